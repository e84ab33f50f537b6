// The example module in JavaScript: word statistics, and the title of a web
// page fetched with the standard `fetch` (which the host sends through its
// egress rules, as wasi:http).
import { InvalidArguments, Plugin, UpstreamError } from 'mcpist-plugin';

const plugin = new Plugin({
  name: 'example-js',
  version: '0.1.0',
  description: 'Example module in JavaScript: word statistics and web page titles.',
  hosts: ['https://example.com'],
});

plugin.tool(
  {
    name: 'word_stats',
    description:
      'Word statistics of a passage: how many words (runs of letters, digits and underscores), how many distinct ones ignoring case, and the longest.',
    input: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    output: {
      type: 'object',
      properties: {
        words: { type: 'integer' },
        unique_words: { type: 'integer' },
        longest: { type: 'string' },
      },
      required: ['words', 'unique_words', 'longest'],
    },
    flags: ['read-only', 'idempotent', 'concurrency-safe'],
  },
  ({ text }) => {
    if (text === 'crash') {
      // A bug, on purpose: shows how an uncaught error is reported.
      throw new Error('the example crashed on purpose');
    }
    const words = text.match(/\w+/g) ?? [];
    return {
      words: words.length,
      unique_words: new Set(words.map((w) => w.toLowerCase())).size,
      longest: words.reduce((longest, w) => (w.length > longest.length ? w : longest), ''),
    };
  },
);

plugin.tool(
  {
    name: 'page_title',
    description: 'Fetch a page from https://example.com and return its HTTP status and <title>.',
    input: { type: 'object', properties: { url: { type: 'string' } }, required: ['url'] },
    output: {
      type: 'object',
      properties: { status: { type: 'integer' }, title: { type: 'string' } },
      required: ['status', 'title'],
    },
    flags: ['read-only', 'open-world', 'concurrency-safe'],
  },
  async ({ url }) => {
    if (!url.startsWith('https://')) {
      throw new InvalidArguments(`url must start with https://, got ${JSON.stringify(url)}`);
    }
    let response;
    try {
      response = await fetch(url, { headers: { accept: 'text/html' } });
    } catch (error) {
      throw new UpstreamError(`fetching ${url} failed: ${error.message}`);
    }
    const page = await response.text();
    const found = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(page);
    return { status: response.status, title: found ? unescape(found[1]).trim() : '' };
  },
);

/** The few entities a title usually holds. */
function unescape(text) {
  const entities = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, name) => entities[name]);
}

export const module = plugin.module();
