// The example module in C: word statistics, and the title of a web page
// fetched through the host's `http` import.
//
// Built by `cargo xtask build-examples c`: Debian's clang and wasi-libc make
// a WASI preview 1 core module against the bindings `wit-bindgen-c`
// generates from wit/ (plugin.h, plugin.c), and the preview1 adapter makes
// it a component. Memory rules of those bindings: what a function exported
// to the host receives is ours to free; what it returns must be allocated
// with malloc, since the bindings free it after the host has copied it.

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"

#define WORD_STATS_INPUT \
  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}"
#define WORD_STATS_OUTPUT                                                                  \
  "{\"type\":\"object\",\"properties\":{\"words\":{\"type\":\"integer\"},"                 \
  "\"unique_words\":{\"type\":\"integer\"},\"longest\":{\"type\":\"string\"}},"            \
  "\"required\":[\"words\",\"unique_words\",\"longest\"]}"
#define PAGE_TITLE_INPUT \
  "{\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\"}},\"required\":[\"url\"]}"
#define PAGE_TITLE_OUTPUT                                                                  \
  "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"integer\"},"                \
  "\"title\":{\"type\":\"string\"}},\"required\":[\"status\",\"title\"]}"

// ---------------------------------------------------------------------------
// A growable byte buffer, for building JSON and copying strings.

typedef struct {
  char *data;
  size_t len, cap;
} buffer;

static void buffer_push(buffer *b, const char *bytes, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->data = realloc(b->data, b->cap);
    if (!b->data) abort();
  }
  memcpy(b->data + b->len, bytes, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buffer_printf(buffer *b, const char *format, ...) {
  char small[64];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(small, sizeof small, format, args);
  va_end(args);
  if (n >= 0 && (size_t)n < sizeof small) buffer_push(b, small, (size_t)n);
}

// `bytes` as a JSON string literal.
static void buffer_json_string(buffer *b, const char *bytes, size_t n) {
  buffer_push(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)bytes[i];
    if (c == '"' || c == '\\') {
      buffer_push(b, "\\", 1);
      buffer_push(b, (const char *)&c, 1);
    } else if (c < 0x20) {
      buffer_printf(b, "\\u%04x", c);
    } else {
      buffer_push(b, (const char *)&c, 1);
    }
  }
  buffer_push(b, "\"", 1);
}

// The buffer's bytes as a string the bindings may free.
static plugin_string_t buffer_into_string(buffer *b) {
  plugin_string_t s = {(uint8_t *)b->data, b->len};
  if (!s.ptr) plugin_string_dup(&s, "");
  return s;
}

// ---------------------------------------------------------------------------
// Reading the arguments. The host has validated them against the tool's
// schema, so they are an object whose only property is one string; a small
// reader of that shape is enough (and says so when it meets anything else).

static void skip_space(const char **p, const char *end) {
  while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
}

static int hex4(const char *p, unsigned *out) {
  *out = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    *out <<= 4;
    if (c >= '0' && c <= '9') *out |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') *out |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') *out |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  return 1;
}

static void push_utf8(buffer *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  buffer_push(b, u, n);
}

// A JSON string at *p (after its opening quote), decoded into `out`.
static int read_json_string(const char **p, const char *end, buffer *out) {
  while (*p < end) {
    char c = *(*p)++;
    if (c == '"') return 1;
    if (c != '\\') { buffer_push(out, &c, 1); continue; }
    if (*p >= end) return 0;
    char e = *(*p)++;
    switch (e) {
      case '"': case '\\': case '/': buffer_push(out, &e, 1); break;
      case 'b': buffer_push(out, "\b", 1); break;
      case 'f': buffer_push(out, "\f", 1); break;
      case 'n': buffer_push(out, "\n", 1); break;
      case 'r': buffer_push(out, "\r", 1); break;
      case 't': buffer_push(out, "\t", 1); break;
      case 'u': {
        unsigned cp, low;
        if (end - *p < 4 || !hex4(*p, &cp)) return 0;
        *p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && end - *p >= 6 && (*p)[0] == '\\' && (*p)[1] == 'u' &&
            hex4(*p + 2, &low) && low >= 0xDC00 && low < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          *p += 6;
        }
        push_utf8(out, cp);
        break;
      }
      default: return 0;
    }
  }
  return 0;
}

// The string property `key` of the arguments object, or NULL (freed by the
// caller).
static char *string_argument(const plugin_string_t *arguments, const char *key) {
  const char *p = (const char *)arguments->ptr, *end = p + arguments->len;
  skip_space(&p, end);
  if (p >= end || *p++ != '{') return NULL;
  for (;;) {
    buffer name = {0}, value = {0};
    skip_space(&p, end);
    if (p >= end || *p++ != '"' || !read_json_string(&p, end, &name)) { free(name.data); return NULL; }
    skip_space(&p, end);
    if (p >= end || *p++ != ':') { free(name.data); return NULL; }
    skip_space(&p, end);
    if (p >= end || *p++ != '"' || !read_json_string(&p, end, &value)) {
      free(name.data); free(value.data); return NULL;
    }
    int found = name.data && strcmp(name.data, key) == 0;
    free(name.data);
    if (found) {
      if (!value.data) buffer_push(&value, "", 0);
      return value.data;
    }
    free(value.data);
    skip_space(&p, end);
    if (p >= end || *p++ != ',') return NULL;
  }
}

// ---------------------------------------------------------------------------
// Results and errors.

static bool tool_error(exports_mcpist_plugin_module_tool_error_t *err, uint8_t kind, const char *message) {
  err->tag = kind;
  plugin_string_dup(&err->val.failed, message);
  return false;
}

// A structured result: the same JSON as the content shown to the model.
static bool structured(exports_mcpist_plugin_module_call_output_t *ret, buffer *json) {
  plugin_string_t text = buffer_into_string(json);
  ret->content.len = 1;
  ret->content.ptr = malloc(sizeof *ret->content.ptr);
  if (!ret->content.ptr) abort();
  ret->content.ptr[0].tag = MCPIST_PLUGIN_TYPES_CONTENT_JSON;
  plugin_string_dup_n(&ret->content.ptr[0].val.json, (const char *)text.ptr, text.len);
  ret->structured.is_some = true;
  ret->structured.val = text;
  return true;
}

// ---------------------------------------------------------------------------
// word_stats: words are runs of ASCII letters, digits and `_`, and of any
// non-ASCII character (so accented words stay whole); case is folded for
// ASCII only.

static int is_word_byte(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

static size_t utf8_length(const char *s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < n; i++) chars += ((unsigned char)s[i] & 0xC0) != 0x80;
  return chars;
}

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool word_stats(const char *text, exports_mcpist_plugin_module_call_output_t *ret,
                       exports_mcpist_plugin_module_tool_error_t *err) {
  if (strcmp(text, "crash") == 0) {
    // A bug, on purpose: shows how a trap is reported (with this line).
    fprintf(stderr, "the example crashed on purpose\n");
    abort();
  }
  size_t count = 0, cap = 0, longest_at = 0, longest_len = 0, longest_chars = 0;
  char **folded = NULL;
  for (size_t i = 0; text[i];) {
    if (!is_word_byte((unsigned char)text[i])) { i++; continue; }
    size_t start = i;
    while (text[i] && is_word_byte((unsigned char)text[i])) i++;
    size_t len = i - start, chars = utf8_length(text + start, len);
    if (chars > longest_chars) { longest_at = start; longest_len = len; longest_chars = chars; }
    if (count == cap) {
      cap = cap ? cap * 2 : 16;
      folded = realloc(folded, cap * sizeof *folded);
      if (!folded) abort();
    }
    char *word = malloc(len + 1);
    if (!word) abort();
    for (size_t k = 0; k < len; k++) word[k] = (char)tolower((unsigned char)text[start + k]);
    word[len] = '\0';
    folded[count++] = word;
  }
  qsort(folded, count, sizeof *folded, compare_strings);
  size_t unique = 0;
  for (size_t k = 0; k < count; k++) unique += k == 0 || strcmp(folded[k], folded[k - 1]) != 0;
  for (size_t k = 0; k < count; k++) free(folded[k]);
  free(folded);

  buffer json = {0};
  buffer_printf(&json, "{\"words\":%zu,\"unique_words\":%zu,\"longest\":", count, unique);
  buffer_json_string(&json, text + longest_at, longest_len);
  buffer_push(&json, "}", 1);
  return structured(ret, &json);
}

// ---------------------------------------------------------------------------
// page_title: a GET through the host, then the page's <title>.

static const char *find_ci(const char *haystack, const char *end, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = haystack; p + n <= end; p++)
    if (strncasecmp(p, needle, n) == 0) return p;
  return NULL;
}

// The title text with the common character references decoded and the
// surrounding white space removed.
static void decode_title(const char *from, const char *to, buffer *out) {
  static const struct { const char *name; char c; } named[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}, {"&apos;", '\''}};
  while (from < to && isspace((unsigned char)*from)) from++;
  while (to > from && isspace((unsigned char)to[-1])) to--;
  while (from < to) {
    size_t i = 0, count = sizeof named / sizeof named[0];
    for (; i < count; i++) {
      size_t n = strlen(named[i].name);
      if ((size_t)(to - from) >= n && strncmp(from, named[i].name, n) == 0) {
        buffer_push(out, &named[i].c, 1);
        from += n;
        break;
      }
    }
    if (i == count) buffer_push(out, from++, 1);
  }
}

static bool page_title(const char *url, exports_mcpist_plugin_module_call_output_t *ret,
                       exports_mcpist_plugin_module_tool_error_t *err) {
  if (strncmp(url, "https://", 8) != 0) {
    buffer message = {0};
    buffer_printf(&message, "url must start with https://, got ");
    buffer_json_string(&message, url, strlen(url));
    bool failed = tool_error(err, MCPIST_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS, message.data);
    free(message.data);
    return failed;
  }
  plugin_tuple2_string_string_t accept;
  plugin_string_set(&accept.f0, "accept");
  plugin_string_set(&accept.f1, "text/html");
  mcpist_plugin_http_request_t request = {.headers = {&accept, 1}};
  plugin_string_set(&request.method, "GET");
  plugin_string_set(&request.url, url);
  mcpist_plugin_http_response_t response;
  mcpist_plugin_http_error_t failure;
  if (!mcpist_plugin_http_send(&request, &response, &failure)) {
    // `denied` says which rule refused the request; `failed` what broke.
    buffer message = {0};
    buffer_push(&message, (const char *)failure.val.failed.ptr, failure.val.failed.len);
    mcpist_plugin_http_error_free(&failure);
    bool failed = tool_error(err, MCPIST_PLUGIN_TYPES_TOOL_ERROR_UPSTREAM, message.data ? message.data : "");
    free(message.data);
    return failed;
  }
  const char *page = (const char *)response.body.ptr, *end = page + response.body.len;
  buffer title = {0};
  const char *open = find_ci(page, end, "<title");
  const char *text = open ? memchr(open, '>', (size_t)(end - open)) : NULL;
  const char *close = text ? find_ci(text, end, "</title>") : NULL;
  if (close) decode_title(text + 1, close, &title);

  buffer json = {0};
  buffer_printf(&json, "{\"status\":%u,\"title\":", (unsigned)response.status);
  buffer_json_string(&json, title.data ? title.data : "", title.len);
  buffer_push(&json, "}", 1);
  free(title.data);
  mcpist_plugin_http_response_free(&response);
  return structured(ret, &json);
}

// ---------------------------------------------------------------------------
// The module's exports.

static void describe_tool(mcpist_plugin_types_tool_t *tool, const char *name, const char *description,
                          const char *input, const char *output, mcpist_plugin_types_tool_flags_t flags) {
  plugin_string_dup(&tool->name, name);
  plugin_string_dup(&tool->description, description);
  plugin_string_dup(&tool->input_schema, input);
  tool->output_schema.is_some = true;
  plugin_string_dup(&tool->output_schema.val, output);
  tool->flags = flags;
}

void exports_mcpist_plugin_module_describe(exports_mcpist_plugin_module_module_info_t *ret) {
  plugin_string_dup(&ret->name, "example-c");
  plugin_string_dup(&ret->version, "0.1.0");
  plugin_string_dup(&ret->description, "Example module in C: word statistics and web page titles.");
  ret->tools.len = 2;
  ret->tools.ptr = calloc(2, sizeof *ret->tools.ptr);
  ret->hosts.len = 1;
  ret->hosts.ptr = calloc(1, sizeof *ret->hosts.ptr);
  if (!ret->tools.ptr || !ret->hosts.ptr) abort();
  describe_tool(&ret->tools.ptr[0], "word_stats",
                "Word statistics of a passage: how many words (runs of letters, digits and "
                "underscores), how many distinct ones ignoring case, and the longest.",
                WORD_STATS_INPUT, WORD_STATS_OUTPUT,
                MCPIST_PLUGIN_TYPES_TOOL_FLAGS_READ_ONLY | MCPIST_PLUGIN_TYPES_TOOL_FLAGS_IDEMPOTENT |
                    MCPIST_PLUGIN_TYPES_TOOL_FLAGS_CONCURRENCY_SAFE);
  describe_tool(&ret->tools.ptr[1], "page_title",
                "Fetch a page from https://example.com and return its HTTP status and <title>.",
                PAGE_TITLE_INPUT, PAGE_TITLE_OUTPUT,
                MCPIST_PLUGIN_TYPES_TOOL_FLAGS_READ_ONLY | MCPIST_PLUGIN_TYPES_TOOL_FLAGS_OPEN_WORLD |
                    MCPIST_PLUGIN_TYPES_TOOL_FLAGS_CONCURRENCY_SAFE);
  plugin_string_dup(&ret->hosts.ptr[0], "https://example.com");
  ret->credentials.len = 0;
  ret->credentials.ptr = NULL;
}

bool exports_mcpist_plugin_module_call(plugin_string_t *tool, plugin_string_t *arguments,
                                       exports_mcpist_plugin_module_call_context_t *context,
                                       exports_mcpist_plugin_module_call_output_t *ret,
                                       exports_mcpist_plugin_module_tool_error_t *err) {
  const char *argument = NULL;
  bool (*run)(const char *, exports_mcpist_plugin_module_call_output_t *,
              exports_mcpist_plugin_module_tool_error_t *) = NULL;
  if (tool->len == 10 && memcmp(tool->ptr, "word_stats", 10) == 0) { argument = "text"; run = word_stats; }
  if (tool->len == 10 && memcmp(tool->ptr, "page_title", 10) == 0) { argument = "url"; run = page_title; }

  bool ok;
  char *value = run ? string_argument(arguments, argument) : NULL;
  if (!run) {
    ok = tool_error(err, MCPIST_PLUGIN_TYPES_TOOL_ERROR_UNKNOWN_TOOL, "no such tool");
  } else if (!value) {
    ok = tool_error(err, MCPIST_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS, "expected a string argument");
  } else {
    ok = run(value, ret, err);
  }
  free(value);
  plugin_string_free(tool);
  plugin_string_free(arguments);
  exports_mcpist_plugin_module_call_context_free(context);
  return ok;
}
