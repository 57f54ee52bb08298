#!/usr/bin/env bash
# Re-fetches the chat page's third-party libraries from npm at pinned versions into
# web/vendor/, with their licenses. The output is committed: `cargo build` embeds web/
# and needs neither Node nor the network. Run from anywhere after changing a version:
#   bash scripts/vendor-web.sh
# Only what the page loads is kept: marked (Markdown), DOMPurify (sanitizes the HTML
# that Markdown produces from model output), highlight.js core with a few languages and
# GitHub's light and dark themes, KaTeX with its CSS and woff2 fonts (the woff and ttf
# fallbacks are dropped from the CSS: every browser that runs ES modules reads woff2).
set -euo pipefail
MARKED=18.2.1
DOMPURIFY=3.5.0
HIGHLIGHT=11.12.0
KATEX=0.19.1
LANGUAGES="bash c cpp css diff go java javascript json markdown python rust sql typescript xml yaml"

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/web/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
for spec in "marked@$MARKED" "dompurify@$DOMPURIFY" "@highlightjs/cdn-assets@$HIGHLIGHT" "katex@$KATEX"; do
  name="${spec%@*}"; dir="${name//\//_}"
  mkdir -p "$dir"
  tarball="$(npm pack --silent "$spec")"
  tar xzf "$tarball" -C "$dir" --strip-components=1
done

rm -rf "$out"
mkdir -p "$out/marked" "$out/dompurify" "$out/highlight" "$out/katex/fonts"
cp marked/lib/marked.esm.js marked/LICENSE "$out/marked/"
cp dompurify/dist/purify.min.js dompurify/LICENSE dompurify/LICENSE-MPL "$out/dompurify/"
cp @highlightjs_cdn-assets/es/core.min.js @highlightjs_cdn-assets/LICENSE "$out/highlight/"
cp @highlightjs_cdn-assets/styles/github.min.css @highlightjs_cdn-assets/styles/github-dark.min.css "$out/highlight/"
# The grammars in one module (one request instead of 16): each file is
# `var hljsGrammar=(...)();export default hljsGrammar;`, renamed here to its language.
{
  echo "// highlight.js $HIGHLIGHT grammars ($LANGUAGES), joined by scripts/vendor-web.sh."
  for l in $LANGUAGES; do
    sed -e "s/^var hljsGrammar=/const grammar_$l=/" -e 's/export default hljsGrammar;$//' \
      "@highlightjs_cdn-assets/es/languages/$l.min.js"
    echo ";"
  done
  printf 'export default {'
  for l in $LANGUAGES; do printf ' %s: grammar_%s,' "$l" "$l"; done
  echo ' };'
} >"$out/highlight/languages.js"
if grep -q hljsGrammar "$out/highlight/languages.js"; then
  echo "vendor-web.sh: a grammar's wrapper changed; update the sed above" >&2; exit 1
fi
cp katex/dist/katex.min.js katex/LICENSE "$out/katex/"
cp katex/dist/fonts/*.woff2 "$out/katex/fonts/"
# Keep only the woff2 source of each @font-face.
sed -E 's/(format\("woff2"\)),url\([^)]*\.woff\) format\("woff"\),url\([^)]*\.ttf\) format\("truetype"\)/\1/g' \
  katex/dist/katex.min.css >"$out/katex/katex.min.css"
if grep -q '\.ttf\|\.woff)' "$out/katex/katex.min.css"; then
  echo "vendor-web.sh: KaTeX's CSS still names woff/ttf fonts; update the sed above" >&2; exit 1
fi
cat >"$out/VERSIONS" <<V
marked $MARKED (MIT)
dompurify $DOMPURIFY (MPL-2.0 OR Apache-2.0)
@highlightjs/cdn-assets $HIGHLIGHT (BSD-3-Clause): core, $LANGUAGES; github and github-dark themes
katex $KATEX (MIT): katex.min.js, katex.min.css, woff2 fonts
V
du -sb "$out" | awk '{printf "web/vendor: %d bytes\n", $1}'
