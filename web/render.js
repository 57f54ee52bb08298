// Answers as Markdown: marked for the text, KaTeX for math ($…$, $$…$$, \(…\), \[…\]),
// highlight.js for code blocks (with a copy button), DOMPurify over the result, since
// what a model writes is not to be trusted with the page.

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
}

// The renderers are most of what the page may load, so none of them holds up its opening:
// marked and DOMPurify are fetched right after the page has loaded (or by the first answer
// that needs them), KaTeX and highlight.js the first time an answer has math or code.
// `candor:render-ready` on the document says when to draw the answers again; until then
// an answer shows as plain text, math as its source, code unhighlighted.
function stylesheet(href, media) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  if (media) link.media = media;
  document.head.append(link);
}

const ready = () => document.dispatchEvent(new Event("candor:render-ready"));
const url = (path) => new URL(path, document.baseURI).href;

function script(src) {
  return new Promise((resolve, reject) => {
    const node = document.createElement("script");
    node.src = src;
    node.onload = resolve;
    node.onerror = () => reject(new Error(`${src} did not load`));
    document.head.append(node);
  });
}

let marked = null;
let markdownLoading = false;

function loadMarkdown() {
  if (markdownLoading) return;
  markdownLoading = true;
  Promise.all([import(url("web/vendor/marked/marked.esm.js")), script("web/vendor/dompurify/purify.min.js")])
    .then(([module]) => {
      marked = markdown(module.Marked);
      ready();
    })
    .catch((e) => {
      markdownLoading = false; // the next answer drawn tries again
      console.error("the Markdown renderer did not load", e);
    });
}

let katexLoading = false;

function loadKatex() {
  if (katexLoading) return;
  katexLoading = true;
  stylesheet("web/vendor/katex/katex.min.css");
  script("web/vendor/katex/katex.min.js").then(ready, (e) => {
    katexLoading = false;
    console.error(e);
  });
}

let hljs = null;
let highlightLoading = false;

function loadHighlight() {
  if (highlightLoading) return;
  highlightLoading = true;
  stylesheet("web/vendor/highlight/github.min.css", "(prefers-color-scheme: light)");
  stylesheet("web/vendor/highlight/github-dark.min.css", "(prefers-color-scheme: dark)");
  Promise.all([import(url("web/vendor/highlight/core.min.js")), import(url("web/vendor/highlight/languages.js"))])
    .then(([core, languages]) => {
      for (const [name, grammar] of Object.entries(languages.default)) core.default.registerLanguage(name, grammar);
      hljs = core.default;
      ready();
    })
    .catch((e) => {
      highlightLoading = false;
      console.error("highlight.js did not load", e);
    });
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

/** A Markdown renderer with the math extensions and highlighted code blocks. */
function markdown(Marked) {
  const md = new Marked({ gfm: true, breaks: false });
  md.use({
    extensions: [blockMath, inlineMath],
    renderer: {
      code({ text, lang }) {
        const language = (lang || "").trim().split(/\s+/)[0].toLowerCase();
        if (language && !hljs) loadHighlight();
        const known = language && hljs && hljs.getLanguage(language);
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
  return md;
}

let hooked = false;

/** Sanitized HTML for an answer written in Markdown. */
export function markdownToHtml(text) {
  const purify = globalThis.DOMPurify;
  if (!marked || !purify) {
    loadMarkdown();
    return `<p class="plain">${escapeHtml(text)}</p>`;
  }
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

// Fetched once the page has loaded, so that the first answer is drawn as Markdown at once.
if (document.readyState === "complete") loadMarkdown();
else window.addEventListener("load", loadMarkdown, { once: true });
