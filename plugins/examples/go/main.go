// The example module in Go: word statistics, and the title of a web page
// fetched through the host. Go's net/http has no transport for WASI, so
// the request goes through the host's `http` import (plugin.go).

package main

import (
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

func init() {
	module = Module{
		Name:        "example-go",
		Version:     "0.1.0",
		Description: "Example module in Go: word statistics and web page titles.",
		Hosts:       []string{"https://example.com"},
		Tools: []Tool{
			{
				Name:        "word_stats",
				Description: "Word statistics of a passage: how many words (runs of letters, digits and underscores), how many distinct ones ignoring case, and the longest.",
				Input:       `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`,
				Output:      `{"type":"object","properties":{"words":{"type":"integer"},"unique_words":{"type":"integer"},"longest":{"type":"string"}},"required":["words","unique_words","longest"]}`,
				Flags:       ReadOnly | Idempotent | ConcurrencySafe,
				Run:         wordStats,
			},
			{
				Name:        "page_title",
				Description: "Fetch a page from https://example.com and return its HTTP status and <title>.",
				Input:       `{"type":"object","properties":{"url":{"type":"string"}},"required":["url"]}`,
				Output:      `{"type":"object","properties":{"status":{"type":"integer"},"title":{"type":"string"}},"required":["status","title"]}`,
				Flags:       ReadOnly | OpenWorld | ConcurrencySafe,
				Run:         pageTitle,
			},
		},
	}
}

// A reactor has no main to run; the host calls the exports.
func main() {}

type wordStatsResult struct {
	Words       int    `json:"words"`
	UniqueWords int    `json:"unique_words"`
	Longest     string `json:"longest"`
}

func wordStats(arguments []byte) (any, error) {
	var args struct{ Text string }
	if err := json.Unmarshal(arguments, &args); err != nil {
		return nil, &ToolError{InvalidArguments, err.Error()}
	}
	if args.Text == "crash" {
		// A bug, on purpose: shows how a panic is reported.
		panic("the example crashed on purpose")
	}
	words := strings.FieldsFunc(args.Text, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_')
	})
	result := wordStatsResult{Words: len(words)}
	seen := map[string]bool{}
	for _, w := range words {
		seen[strings.ToLower(w)] = true
		if utf8.RuneCountInString(w) > utf8.RuneCountInString(result.Longest) {
			result.Longest = w
		}
	}
	result.UniqueWords = len(seen)
	return result, nil
}

var titlePattern = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

type pageTitleResult struct {
	Status uint16 `json:"status"`
	Title  string `json:"title"`
}

func pageTitle(arguments []byte) (any, error) {
	var args struct{ URL string }
	if err := json.Unmarshal(arguments, &args); err != nil {
		return nil, &ToolError{InvalidArguments, err.Error()}
	}
	if !strings.HasPrefix(args.URL, "https://") {
		return nil, &ToolError{InvalidArguments, fmt.Sprintf("url must start with https://, got %q", args.URL)}
	}
	response, err := Send("GET", args.URL, [][2]string{{"accept", "text/html"}}, nil)
	if err != nil {
		return nil, &ToolError{Upstream, err.Error()}
	}
	result := pageTitleResult{Status: response.Status}
	if found := titlePattern.FindSubmatch(response.Body); found != nil {
		result.Title = strings.TrimSpace(html.UnescapeString(string(found[1])))
	}
	return result, nil
}
