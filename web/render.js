// Answers as Markdown: marked for the text, KaTeX for math ($…$, $$…$$, \(…\), \[…\]),
// highlight.js for code blocks (with a copy button), DOMPurify over the result, since
// what a model writes is not to be trusted with the page.

import { Marked } from "./vendor/marked/marked.esm.js";
import hljs from "./vendor/highlight/core.min.js";
import languages from "./vendor/highlight/languages.js";

for (const [name, grammar] of Object.entries(languages)) hljs.registerLanguage(name, grammar);

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
}

// KaTeX is most of the page's weight: it is loaded the first time an answer has math,
// and `candor:math-ready` on the document says when to draw the answers again.
let katexLoading = false;

function loadKatex() {
  if (katexLoading) return;
  katexLoading = true;
  const script = document.createElement("script");
  script.src = "web/vendor/katex/katex.min.js";
  script.onload = () => document.dispatchEvent(new Event("candor:math-ready"));
  document.head.append(script);
}

function tex(source, displayMode) {
  const katex = globalThis.katex;
  if (!katex) {
    loadKatex();
    return `<code class="math-pending">${escapeHtml(source)}</code>`;
  }
  return katex.renderToString(source, { displayMode, throwOnError: false, output: "htmlAndMathml" });
}

// Block math: $$…$$ or \[…\] on lines of their own.
const blockMath = {
  name: "blockMath",
  level: "block",
  start: (src) => src.match(/\$\$|\\\[/)?.index,
  tokenizer(src) {
    const m = /^\$\$([\s\S]+?)\$\$[^\S\n]*(?:\n|$)/.exec(src) || /^\\\[([\s\S]+?)\\\][^\S\n]*(?:\n|$)/.exec(src);
    if (m) return { type: "blockMath", raw: m[0], text: m[1].trim() };
  },
  renderer: (token) => `<div class="math-display">${tex(token.text, true)}</div>`,
};

// Inline math: \(…\), $$…$$ inside a line, and $…$ when it does not look like money
// (no space just inside the dollars, no digit right after the closing one).
const inlineMath = {
  name: "inlineMath",
  level: "inline",
  start: (src) => src.match(/\$|\\\(/)?.index,
  tokenizer(src) {
    let m = /^\\\(([\s\S]+?)\\\)/.exec(src);
    if (m) return { type: "inlineMath", raw: m[0], text: m[1], display: false };
    m = /^\$\$([^$]+?)\$\$/.exec(src);
    if (m) return { type: "inlineMath", raw: m[0], text: m[1], display: true };
    m = /^\$(?!\s)((?:\\.|[^\\$\n])+?)(?<!\s)\$(?!\d)/.exec(src);
    if (m) return { type: "inlineMath", raw: m[0], text: m[1], display: false };
  },
  renderer: (token) => tex(token.text, token.display),
};

const marked = new Marked({ gfm: true, breaks: false });
marked.use({
  extensions: [blockMath, inlineMath],
  renderer: {
    code({ text, lang }) {
      const language = (lang || "").trim().split(/\s+/)[0].toLowerCase();
      const known = language && hljs.getLanguage(language);
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      const label = escapeHtml(language || "text");
      return (
        `<div class="code-block"><div class="code-head"><span>${label}</span>` +
        `<button type="button" class="copy" aria-label="Copy the ${label} code">Copy</button></div>` +
        `<pre><code class="hljs${known ? ` language-${escapeHtml(language)}` : ""}">${body}</code></pre></div>`
      );
    },
  },
});

let hooked = false;

/** Sanitized HTML for an answer written in Markdown. */
export function markdownToHtml(text) {
  const purify = globalThis.DOMPurify;
  if (!purify) return `<p>${escapeHtml(text)}</p>`;
  if (!hooked) {
    // Links open apart from the page, without handing it to the new tab.
    purify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A" && node.getAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
    hooked = true;
  }
  return purify.sanitize(marked.parse(text));
}

/** Copies `text`; falls back to a selection where the Clipboard API is missing (plain HTTP on a LAN address). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // Refused (no permission): the selection below still works.
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}
