#!/usr/bin/env python3
"""Checks the links of the built book (docs/book, from `mdbook build docs`).

Internal links must resolve: the file exists and, with a #fragment, the page has an element
with that id. External links (http, https, mailto) are only checked for their syntax, since CI
is offline. Also checks README.md's relative links, which GitHub renders, against the tree.

usage: scripts/check-doc-links.py [BOOK_DIR]   (default docs/book); exit 1 on a broken link
"""
import html.parser
import os
import re
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# pages mdbook writes for itself: not ours to check
GENERATED = {"print.html", "404.html", "toc.html"}


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "name" in attrs:
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if key in attrs and attrs[key] is not None and tag in ("a", "img", "link", "script"):
                self.links.append((self.getpos()[0], attrs[key]))


def parse(path):
    page = Page()
    with open(path, encoding="utf-8") as f:
        page.feed(f.read())
    return page


def external_ok(url):
    u = urllib.parse.urlparse(url)
    if u.scheme == "mailto":
        return "@" in u.path
    return u.scheme in ("http", "https") and bool(u.netloc) and " " not in url


def check_book(book):
    pages, errors, checked = {}, [], 0
    for dirpath, _, files in os.walk(book):
        for name in files:
            if name.endswith(".html"):
                path = os.path.join(dirpath, name)
                pages[os.path.normpath(path)] = parse(path)
    if not pages:
        return [f"{book}: no HTML pages: run `mdbook build docs` first"], 0
    for path, page in sorted(pages.items()):
        if os.path.basename(path) in GENERATED:
            continue
        for line, url in page.links:
            checked += 1
            where = f"{os.path.relpath(path, ROOT)}:{line}: {url}"
            if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
                if not external_ok(url):
                    errors.append(f"{where}: not a well-formed external link")
                continue
            target, _, fragment = url.partition("#")
            target = urllib.parse.unquote(target)
            dest = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
            if os.path.isdir(dest):
                dest = os.path.join(dest, "index.html")
            if not os.path.exists(dest):
                errors.append(f"{where}: {os.path.relpath(dest, ROOT)} does not exist")
                continue
            if fragment and dest.endswith(".html"):
                ids = pages.get(dest, None) or parse(dest)
                if urllib.parse.unquote(fragment) not in ids.ids:
                    errors.append(f"{where}: no #{fragment} in {os.path.relpath(dest, ROOT)}")
    return errors, checked


def slug(heading):
    """GitHub's and mdbook's anchor for a heading."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def check_readme():
    errors, checked = [], 0
    path = os.path.join(ROOT, "README.md")
    text = open(path, encoding="utf-8").read()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for m in re.finditer(r"\]\(([^)\s]+)\)", prose):
        url = m.group(1)
        line = text[: text.find(m.group(0))].count("\n") + 1
        checked += 1
        where = f"README.md:{line}: {url}"
        if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
            if not external_ok(url):
                errors.append(f"{where}: not a well-formed external link")
            continue
        target, _, fragment = url.partition("#")
        dest = os.path.join(ROOT, target) if target else path
        if not os.path.exists(dest):
            errors.append(f"{where}: {target} does not exist")
            continue
        if fragment and dest.endswith(".md"):
            headings = re.findall(r"^#+ (.+)$", open(dest, encoding="utf-8").read(), re.M)
            if fragment not in {slug(h) for h in headings}:
                errors.append(f"{where}: no heading #{fragment} in {target}")
    return errors, checked


def main():
    book = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "book")
    errors, n_book = check_book(os.path.abspath(book))
    readme_errors, n_readme = check_readme()
    errors += readme_errors
    for e in errors:
        print(f"broken link: {e}", file=sys.stderr)
    print(f"doc links: {n_book} in the book, {n_readme} in README.md checked; {len(errors)} broken")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
