"""Dockerfile parsing, variable expansion and .dockerignore rules."""

from __future__ import annotations

import pytest

from kubelet.runtime.images.dockerfile import expand, ignored, key_values, parse, parse_ignore
from kubelet.runtime.images.errors import BuildError


def test_parse_forms_and_continuations() -> None:
    ins = parse("""# comment
ARG BASE=busybox
FROM $BASE AS app
RUN echo a \\
    && echo b
# inside
COPY --chown=1:2 a b /dst/
CMD ["sh", "-c", "echo hi"]
entrypoint echo shell form
""")
    assert [i.cmd for i in ins] == ["ARG", "FROM", "RUN", "COPY", "CMD", "ENTRYPOINT"]
    assert ins[2].raw == "echo a  && echo b" and ins[2].json_args is None
    assert ins[3].flags == {"chown": "1:2"} and ins[3].raw == "a b /dst/"
    assert ins[4].json_args == ("sh", "-c", "echo hi")
    assert ins[5].raw == "echo shell form" and ins[5].line == 9


@pytest.mark.parametrize("text,msg", [
    ("RUN echo", "first instruction must be FROM"),
    ("FROM busybox\nFROBNICATE x", "line 2: unknown instruction"),
    ("FROM busybox\nCOPY --weird=1 a b", "unsupported flag"),
    ("FROM busybox\nWORKDIR", "requires at least one argument"),
])
def test_parse_errors_name_the_line(text: str, msg: str) -> None:
    with pytest.raises(BuildError, match=msg):
        parse(text)


def test_expand() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert expand("$A ${A} ${B:-def} ${A:+alt} ${EMPTY:-d} \\$A x$Ay", env) == "1 1 def alt d $A x"
    assert expand("${B}", env) == ""


def test_key_values() -> None:
    assert key_values('a=1 b="x y" c=', 1, "ENV") == [("a", "1"), ("b", "x y"), ("c", "")]
    assert key_values("NAME some value", 1, "ENV") == [("NAME", "some value")]
    assert key_values("V", 1, "ARG") == [("V", "")]


def test_dockerignore() -> None:
    rules = parse_ignore("""
# comment
*.log
build/
**/*.tmp
secret*
!secret.pub
docs/**/draft
""")
    assert ignored(rules, "x.log") and not ignored(rules, "sub/x.log")
    assert ignored(rules, "build") and ignored(rules, "build/out/a")
    assert ignored(rules, "a/b/c.tmp") and ignored(rules, "c.tmp")
    assert ignored(rules, "secret.key") and not ignored(rules, "secret.pub")
    assert ignored(rules, "docs/draft") and ignored(rules, "docs/a/b/draft")
    assert not ignored(rules, "src/main.py")
