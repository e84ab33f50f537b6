// The glue between Go and the host: the world's exports and imports in the
// component model's canonical ABI, written by hand because Go builds only
// WASI preview 1 core modules (`GOOS=wasip1 -buildmode=c-shared`) and there
// is no bindings generator for it among the packages this build uses.
// `cargo xtask build-examples go` embeds the world's types and turns the
// core module into a component with the preview1 adapter.
//
// Layouts are those of wasm32: a string or list is (address, length) as two
// u32; records and variants are aligned to 4.

package main

import (
	"encoding/binary"
	"encoding/json"
	"runtime"
	"unsafe"
)

// Tool flags, as in wit/plugin.wit.
const (
	ReadOnly uint8 = 1 << iota
	Destructive
	Idempotent
	OpenWorld
	ConcurrencySafe
)

// Tool error kinds, as in wit/plugin.wit.
const (
	UnknownTool uint8 = iota
	InvalidArguments
	Upstream
	Failed
)

// ToolError is returned by a tool to fail its call with a message for the model.
type ToolError struct {
	Kind    uint8
	Message string
}

func (e *ToolError) Error() string { return e.Message }

// Tool is one tool of the module; Run gets the validated arguments object
// and returns a value whose JSON is the structured result.
type Tool struct {
	Name, Description string
	Input, Output     string
	Flags             uint8
	Run               func(arguments []byte) (any, error)
}

// Module describes the module; main.go fills it in.
type Module struct {
	Name, Version, Description string
	Hosts                      []string
	Tools                      []Tool
}

var module Module

// adapterMemory is memory for the WASI preview 1 adapter, which needs some
// before the Go runtime can allocate: the build gives the adapter an
// allocator over this array, found through adapterMemoryLocation (static
// data: a marker, then the array's address).
var adapterMemory [192 << 10]byte

var adapterMemoryLocation = struct {
	marker  [32]byte
	address *[192 << 10]byte
}{
	[32]byte{'m', 'c', 'p', 'i', 's', 't', ':', ' ', 'W', 'A', 'S', 'I', ' ', 'a', 'd', 'a', 'p', 't', 'e', 'r', ' ', 'm', 'e', 'm', 'o', 'r', 'y', ' ', 'h', 'e', 'r', 'e'},
	&adapterMemory,
}

// Referenced, so that the linker keeps both.
var adapterMemoryKept = &adapterMemoryLocation

func init() { runtime.KeepAlive(adapterMemoryKept) }

// ---------------------------------------------------------------------------
// Memory handed to the host. Go's collector does not move objects, so an
// address stays valid as long as the slice is referenced: `held` keeps what
// the host may still read (results) or has written (arguments, responses)
// until the host says it is done with the call (the post-return exports).

var held [][]byte

func alloc(size, align uint32) uint32 {
	if size == 0 {
		return align
	}
	b := make([]byte, size+align)
	held = append(held, b)
	addr := uint32(uintptr(unsafe.Pointer(&b[0])))
	return (addr + align - 1) &^ (align - 1)
}

// memory is the linear memory at addr, n bytes long. (`go vet` warns of the
// integer-to-pointer conversion: here the integers are addresses the host
// wrote or Go handed out and still holds.)
func memory(addr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(addr))), n)
}

func put32(addr, offset, value uint32) {
	binary.LittleEndian.PutUint32(memory(addr+offset, 4), value)
}

func get32(addr, offset uint32) uint32 {
	return binary.LittleEndian.Uint32(memory(addr+offset, 4))
}

// lower copies s into memory held for the host; returns (address, length).
func lower(s string) (uint32, uint32) {
	addr := alloc(uint32(len(s)), 1)
	copy(memory(addr, uint32(len(s))), s)
	return addr, uint32(len(s))
}

func putString(addr, offset uint32, s string) {
	p, n := lower(s)
	put32(addr, offset, p)
	put32(addr, offset+4, n)
}

//go:wasmexport cabi_realloc
func cabiRealloc(old, oldSize, align, newSize uint32) uint32 {
	addr := alloc(newSize, align)
	copy(memory(addr, newSize), memory(old, min(oldSize, newSize)))
	return addr
}

// ---------------------------------------------------------------------------
// Exports.

//go:wasmexport mcpist:plugin/module@0.1.0#describe
func describe() uint32 {
	info := alloc(48, 4)
	putString(info, 0, module.Name)
	putString(info, 8, module.Version)
	putString(info, 16, module.Description)
	tools := alloc(40*uint32(len(module.Tools)), 4)
	for i, t := range module.Tools {
		at := tools + 40*uint32(i)
		putString(at, 0, t.Name)
		putString(at, 8, t.Description)
		putString(at, 16, t.Input)
		memory(at+24, 1)[0] = 1 // output-schema: some
		putString(at, 28, t.Output)
		memory(at+36, 1)[0] = t.Flags
	}
	put32(info, 24, tools)
	put32(info, 28, uint32(len(module.Tools)))
	hosts := alloc(8*uint32(len(module.Hosts)), 4)
	for i, h := range module.Hosts {
		putString(hosts, 8*uint32(i), h)
	}
	put32(info, 32, hosts)
	put32(info, 36, uint32(len(module.Hosts)))
	put32(info, 40, 0) // no credential bindings
	put32(info, 44, 0)
	return info
}

//go:wasmexport cabi_post_mcpist:plugin/module@0.1.0#describe
func describeDone(uint32) { held = nil }

//go:wasmexport mcpist:plugin/module@0.1.0#call
func call(toolAddr, toolLen, argsAddr, argsLen, hasAccount, accountAddr, accountLen uint32) uint32 {
	name := string(memory(toolAddr, toolLen))
	arguments := append([]byte(nil), memory(argsAddr, argsLen)...)
	ret := alloc(24, 4)
	for _, t := range module.Tools {
		if t.Name != name {
			continue
		}
		value, err := t.Run(arguments)
		if err != nil {
			return callError(ret, err)
		}
		result, err := json.Marshal(value)
		if err != nil {
			return callError(ret, err)
		}
		memory(ret, 1)[0] = 0 // ok
		content := alloc(12, 4)
		memory(content, 1)[0] = 1 // json
		putString(content, 4, string(result))
		put32(ret, 4, content)
		put32(ret, 8, 1)
		memory(ret+12, 1)[0] = 1 // structured: some
		putString(ret, 16, string(result))
		return ret
	}
	return callError(ret, &ToolError{UnknownTool, "no tool named " + name})
}

func callError(ret uint32, err error) uint32 {
	kind := Failed
	if e, ok := err.(*ToolError); ok {
		kind = e.Kind
	}
	memory(ret, 1)[0] = 1 // err
	memory(ret+4, 1)[0] = kind
	putString(ret, 8, err.Error())
	return ret
}

//go:wasmexport cabi_post_mcpist:plugin/module@0.1.0#call
func callDone(uint32) { held = nil }

// ---------------------------------------------------------------------------
// Imports.

//go:wasmimport mcpist:plugin/http@0.1.0 send
func httpSend(methodAddr, methodLen, urlAddr, urlLen, headersAddr, headersLen, hasBody, bodyAddr, bodyLen, ret uint32)

// Response is what the host's `http.send` answered.
type Response struct {
	Status  uint16
	Headers [][2]string
	Body    []byte
}

// HTTPError is a request the host refused (Denied: the message names the rule
// and what the owner may allow) or that failed on its way.
type HTTPError struct {
	Denied  bool
	Message string
}

func (e *HTTPError) Error() string { return e.Message }

// Send asks the host to send a request; the host applies the module's
// approved hosts and the owner's rules, and attaches any credential.
func Send(method, url string, headers [][2]string, body []byte) (*Response, error) {
	headersAddr := alloc(16*uint32(len(headers)), 4)
	for i, h := range headers {
		putString(headersAddr, 16*uint32(i), h[0])
		putString(headersAddr, 16*uint32(i)+8, h[1])
	}
	methodAddr, methodLen := lower(method)
	urlAddr, urlLen := lower(url)
	hasBody := uint32(0)
	bodyAddr, bodyLen := uint32(0), uint32(0)
	if body != nil {
		hasBody = 1
		bodyAddr, bodyLen = lower(string(body))
	}
	ret := alloc(24, 4)
	httpSend(methodAddr, methodLen, urlAddr, urlLen, headersAddr, uint32(len(headers)), hasBody, bodyAddr, bodyLen, ret)
	if memory(ret, 1)[0] != 0 {
		denied := memory(ret+4, 1)[0] == 0
		return nil, &HTTPError{denied, string(memory(get32(ret, 8), get32(ret, 12)))}
	}
	response := &Response{Status: binary.LittleEndian.Uint16(memory(ret+4, 2))}
	list, count := get32(ret, 8), get32(ret, 12)
	for i := uint32(0); i < count; i++ {
		at := list + 16*i
		response.Headers = append(response.Headers, [2]string{
			string(memory(get32(at, 0), get32(at, 4))),
			string(memory(get32(at, 8), get32(at, 12))),
		})
	}
	response.Body = append([]byte(nil), memory(get32(ret, 16), get32(ret, 20))...)
	return response, nil
}
