/**
 * A small Markdown renderer for model output that builds DOM nodes directly. Model text is untrusted, so
 * it only ever becomes text nodes (never HTML): `<script>` or `<img onerror=…>` in a reply shows as those
 * characters. Links are made only for http(s) URLs, and open with rel="noopener noreferrer".
 *
 * Blocks: fenced code (``` or ~~~; an unclosed fence runs to the end, as while streaming), ATX headings,
 * bullet and numbered lists, block quotes, rules and paragraphs. Inline: code spans, **bold**, *italic*,
 * _italic_, [links](https://…) and bare http(s) URLs.
 */

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})\s*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const HEADING_TAGS = ['h3', 'h4', 'h5', 'h6'] as const;
const LIST_ITEM = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;

/**
 * One alternative per inline construct, tried left to right at the earliest match:
 * code span | [text](url) | **bold** | __bold__ | *italic* | _italic_ (underscores not inside words) | bare URL.
 */
const INLINE =
  /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\[([^\]\n]+)\]\(\s*<?([^\s()<>]+)>?\s*\)|\*\*(?=\S)([\s\S]*?\S)\*\*|(?<![\p{L}\p{N}_])__(?=\S)([\s\S]*?\S)__(?![\p{L}\p{N}_])|\*(?=[^\s*])([^*]*?[^\s*])\*|(?<![\p{L}\p{N}_])_(?=[^\s_])([^_]*?[^\s_])_(?![\p{L}\p{N}_])|(https?:\/\/[^\s<>"'`]*[^\s<>"'`.,;:!?)\]}])/gu;

/** The URL when it is an absolute http(s) URL, else null (javascript:, data:, relative, malformed…). */
export function safeHref(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

function link(href: string, text: string, parent: Node, allowLinks: boolean): void {
  const a = document.createElement('a');
  a.href = href;
  a.rel = 'noopener noreferrer';
  a.target = '_blank';
  renderInline(text, a, false);
  // A link inside a link is invalid HTML; `allowLinks` is false within link text.
  parent.appendChild(allowLinks ? a : document.createTextNode(a.textContent ?? ''));
}

function wrap(tag: 'strong' | 'em', text: string, parent: Node, allowLinks: boolean): void {
  const node = document.createElement(tag);
  renderInline(text, node, allowLinks);
  parent.appendChild(node);
}

/** Appends `text` to `parent` with inline markup; line breaks become <br>. */
function renderInline(text: string, parent: Node, allowLinks = true): void {
  const appendText = (s: string) => {
    const lines = s.split('\n');
    lines.forEach((line, i) => {
      if (i > 0) parent.appendChild(document.createElement('br'));
      if (line) parent.appendChild(document.createTextNode(line));
    });
  };
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    const start = m.index;
    appendText(text.slice(last, start));
    last = start + m[0].length;
    if (m[1] !== undefined) {
      const code = document.createElement('code');
      code.textContent = m[2].replace(/^ (.*) $/s, '$1');
      parent.appendChild(code);
    } else if (m[3] !== undefined) {
      const href = safeHref(m[4]);
      if (href) link(href, m[3], parent, allowLinks);
      else appendText(m[0]);
    } else if (m[5] !== undefined || m[6] !== undefined) wrap('strong', m[5] ?? m[6], parent, allowLinks);
    else if (m[7] !== undefined || m[8] !== undefined) wrap('em', m[7] ?? m[8], parent, allowLinks);
    else {
      const href = safeHref(m[9]);
      if (href && allowLinks) link(href, m[9], parent, true);
      else appendText(m[9]);
    }
  }
  appendText(text.slice(last));
}

function block<K extends keyof HTMLElementTagNameMap>(tag: K, inline?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (inline !== undefined) renderInline(inline, node);
  return node;
}

/** Renders Markdown `text` into a fragment of DOM nodes; no model text is ever parsed as HTML. */
export function renderMarkdown(text: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  const startsBlock = (line: string) => FENCE.test(line) || HEADING.test(line) || LIST_ITEM.test(line) || QUOTE.test(line) || RULE.test(line);

  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const closes = (candidate: string) => {
        const close = FENCE_CLOSE.exec(candidate);
        return close !== null && close[1][0] === marker[0] && close[1].length >= marker.length;
      };
      const body: string[] = [];
      i++;
      while (i < lines.length && !closes(lines[i])) body.push(lines[i++]);
      i++;
      const pre = document.createElement('pre');
      const code = document.createElement('code');
      // The language only ever becomes a class name, and FENCE allows only [\w+#.-] in it.
      if (fence[2]) code.className = `language-${fence[2]}`;
      code.textContent = body.join('\n');
      pre.appendChild(code);
      out.appendChild(pre);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      // Headings in a chat bubble stay modest: # is h3, #### and deeper are h6.
      out.appendChild(block(HEADING_TAGS[Math.min(heading[1].length, HEADING_TAGS.length) - 1], heading[2]));
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.appendChild(document.createElement('hr'));
      i++;
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      const ordered = /\d/.test(item[1]);
      const list = ordered ? document.createElement('ol') : document.createElement('ul');
      if (ordered && parseInt(item[1], 10) !== 1) list.setAttribute('start', String(parseInt(item[1], 10)));
      let current: string[] = [];
      const flush = () => {
        if (current.length) list.appendChild(block('li', current.join('\n')));
        current = [];
      };
      while (i < lines.length) {
        const next = LIST_ITEM.exec(lines[i]);
        if (next && /\d/.test(next[1]) === ordered) {
          flush();
          current.push(next[2]);
        } else if (lines[i].trim() && !next && !startsBlock(lines[i]) && current.length) {
          // A continuation line of the current item (nested lists flatten into it).
          current.push(lines[i].trim());
        } else if (next && current.length) {
          // A nested list of the other kind: keep it in the item as text.
          current.push(lines[i].trim());
        } else break;
        i++;
      }
      flush();
      out.appendChild(list);
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted: string[] = [];
      let m: RegExpExecArray | null;
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        quoted.push(m[1]);
        i++;
      }
      const quote = document.createElement('blockquote');
      quote.appendChild(renderMarkdown(quoted.join('\n')));
      out.appendChild(quote);
      continue;
    }
    const paragraph: string[] = [];
    while (i < lines.length && lines[i].trim() && (paragraph.length === 0 || !startsBlock(lines[i]))) paragraph.push(lines[i++]);
    out.appendChild(block('p', paragraph.join('\n')));
  }
  return out;
}
