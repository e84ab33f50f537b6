// JavaScript SDK for MCPist modules, built into a component by
// componentize-js (through jco). A module registers its tools and exports
// what the SDK builds:
//
//   import { Plugin, InvalidArguments } from 'mcpist-plugin';
//
//   const plugin = new Plugin({ name: 'words', version: '0.1.0',
//                               description: 'Word statistics.',
//                               hosts: ['https://example.com'] });
//
//   plugin.tool({ name: 'count', description: 'Count the words of a text.',
//                 input: { type: 'object', properties: { text: { type: 'string' } },
//                          required: ['text'] },
//                 flags: ['read-only', 'idempotent'] },
//               ({ text }) => ({ words: text.split(/\s+/).filter(Boolean).length }));
//
//   export const module = plugin.module();
//
// A handler gets the call's arguments (an object) and the call context
// ({ account }), may be async, and returns the result: an object or array is
// a structured (JSON) result, a string is text. Throwing InvalidArguments,
// UpstreamError or ToolFailed returns that kind of tool error; anything else
// thrown returns a `failed` tool error with the error's name and message
// (its stack goes to the host's log), so a bug is reported, not a crash.
// HTTP: the standard `fetch`, which the host sends through its egress rules.

import { log } from 'mcpist:plugin/log@0.1.0';

/** The tool flags of wit/plugin.wit, by their WIT names. */
const FLAG_NAMES = {
  'read-only': 'readOnly',
  destructive: 'destructive',
  idempotent: 'idempotent',
  'open-world': 'openWorld',
  'concurrency-safe': 'concurrencySafe',
};

/** The tool could not do what was asked (the `failed` tool error). */
export class ToolFailed extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
    // componentize-js takes a thrown value's own `payload` property as the
    // `result` error of an export (a getter on the class is not enough).
    this.payload = { tag: this.tag, val: message };
  }

  get tag() {
    return 'failed';
  }
}

/** The arguments are well-formed but not acceptable. */
export class InvalidArguments extends ToolFailed {
  get tag() {
    return 'invalid-arguments';
  }
}

/** The service the module called answered with an error. */
export class UpstreamError extends ToolFailed {
  get tag() {
    return 'upstream';
  }
}

/** Credential bindings: the host attaches the owner's secret to requests to
 * `hosts`; the module never sees it. */
export const credentials = {
  bearer: (service, hosts) => ({ service, inject: { tag: 'bearer' }, hosts }),
  header: (service, name, template, hosts) => ({
    service,
    inject: { tag: 'header', val: { name, template } },
    hosts,
  }),
  basic: (service, username, hosts) => ({ service, inject: { tag: 'basic', val: username }, hosts }),
  query: (service, param, hosts) => ({ service, inject: { tag: 'query', val: param }, hosts }),
};

function toolFlags(names) {
  const flags = Object.fromEntries(Object.values(FLAG_NAMES).map((f) => [f, false]));
  for (const name of names) {
    const field = FLAG_NAMES[name];
    if (!field) {
      throw new Error(`unknown tool flag ${JSON.stringify(name)}; flags: ${Object.keys(FLAG_NAMES).join(', ')}`);
    }
    flags[field] = true;
  }
  return flags;
}

function output(result) {
  if (typeof result === 'string') {
    return { content: [{ tag: 'text', val: result }], structured: undefined };
  }
  const json = JSON.stringify(result);
  return { content: [{ tag: 'json', val: json }], structured: json };
}

/** What a module declares, and its tools. */
export class Plugin {
  constructor({ name, version, description, hosts = [], credentials = [] }) {
    this.info = { name, version, description, hosts, credentials };
    this.tools = new Map();
  }

  /** Register `handler` as a tool. `input` and `output` are JSON Schemas of
   * its arguments object and of its structured result. */
  tool({ name, description, input, output: outputSchema, flags = ['read-only'] }, handler) {
    if (this.tools.has(name)) {
      throw new Error(`tool ${name} is declared twice`);
    }
    this.tools.set(name, {
      spec: {
        name,
        description,
        inputSchema: JSON.stringify(input),
        outputSchema: outputSchema === undefined ? undefined : JSON.stringify(outputSchema),
        flags: toolFlags(flags),
      },
      handler,
    });
    return this;
  }

  /** The world's `module` export. */
  module() {
    return {
      describe: () => ({ ...this.info, tools: [...this.tools.values()].map((t) => t.spec) }),
      call: (tool, args, context) => this.#call(tool, args, context),
    };
  }

  async #call(tool, args, context) {
    const found = this.tools.get(tool);
    if (!found) {
      throw { tag: 'unknown-tool', val: `no tool ${tool}; this module has: ${[...this.tools.keys()].join(', ')}` };
    }
    try {
      return output(await found.handler(JSON.parse(args), context));
    } catch (error) {
      if (error instanceof ToolFailed) {
        throw error;
      }
      const name = error?.name ?? 'Error';
      const message = error?.message ?? String(error);
      log('error', `tool ${tool} threw ${name}: ${message}\n${error?.stack ?? ''}`);
      throw { tag: 'failed', val: `${name}: ${message}` };
    }
  }
}
