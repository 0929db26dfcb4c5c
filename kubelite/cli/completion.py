"""``kubelite completion bash|zsh``: print a shell completion script (commands, resource types, ``-o`` values).

The script is static text built from the ``COMMANDS`` table and ``kubelite.api.resources``; it asks no
server, so completing stays instant. Load it with ``source <(kubelite completion bash)``.
"""

from __future__ import annotations

import sys

from kubelite.api.resources import RESOURCES

# commands whose first argument is a resource type
TYPED_COMMANDS = ("get", "describe", "delete", "edit", "label", "annotate", "patch", "scale", "inspect", "top",
                  "explain", "wait")
OUTPUT_FORMATS = ("json", "yaml", "wide", "name", "jsonpath=", "custom-columns=")

_BASH = """# bash completion for kubelite; load with: source <(kubelite completion bash)
_kubelite() {
    local cur prev i cmd=""
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac
    done
    case "$prev" in
        -o|--output) COMPREPLY=($(compgen -W "%(outputs)s" -- "$cur")); compopt -o nospace 2>/dev/null; return ;;
    esac
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "%(commands)s" -- "$cur")); return
    fi
    case "$cmd" in
        %(typed)s)
            if [[ "$prev" == "$cmd" ]]; then COMPREPLY=($(compgen -W "%(resources)s" -- "$cur")); fi ;;
        completion)
            if [[ "$prev" == "$cmd" ]]; then COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); fi ;;
    esac
}
complete -F _kubelite kubelite
"""

_ZSH = """#compdef kubelite
# zsh completion for kubelite; load with: source <(kubelite completion zsh)
_kubelite() {
    local -a commands resources outputs
    commands=(%(commands)s)
    resources=(%(resources)s)
    outputs=(%(outputs)s)
    if [[ "${words[CURRENT-1]}" == (-o|--output) ]]; then
        compadd -S '' -a outputs; return
    fi
    if (( CURRENT == 2 )); then
        compadd -a commands; return
    fi
    case "${words[2]}" in
        %(typed)s)
            (( CURRENT == 3 )) && compadd -a resources ;;
        completion)
            (( CURRENT == 3 )) && compadd bash zsh ;;
    esac
}
if [[ "$funcstack[1]" == "_kubelite" ]]; then _kubelite "$@"; else compdef _kubelite kubelite; fi
"""


def resource_words() -> list[str]:
    """Every name a type can be given by on the command line: plural, singular, short names."""
    words: list[str] = []
    for r in RESOURCES:
        for w in (r.resource, r.singular, *r.short_names):
            if w not in words:
                words.append(w)
    return words + ["all"]


def script(shell: str) -> str:
    from kubelite.cli.main import COMMANDS

    fields = {"commands": " ".join(sorted(COMMANDS)), "resources": " ".join(resource_words()),
              "outputs": " ".join(OUTPUT_FORMATS), "typed": "|".join(TYPED_COMMANDS)}
    return (_BASH if shell == "bash" else _ZSH) % fields


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("bash", "zsh"):
        if argv and argv[0] in ("-h", "--help"):
            print("usage: kubelite completion bash|zsh\n\nPrint a shell completion script, e.g.\n"
                  "  source <(kubelite completion bash)")
            return 0
        shell = argv[0] if argv else ""
        print(f'error: unsupported shell type "{shell}". Must be one of: bash, zsh' if shell else
              "error: shell not specified. See 'kubelite completion -h' for help and examples", file=sys.stderr)
        return 1
    sys.stdout.write(script(argv[0]))
    return 0
