"""The commands in README.md and docs/*.md still match the code.

Each line of a ```bash block (continuation lines joined, comments dropped) is split into commands at `&&`, `||`,
`;` and `|`. Then:
  - every project file a command names (scripts/…, main.py, benchmarks/…, configs/…) must exist;
  - a command that runs one of our scripts (main.py, scripts/*, benchmarks/*.py, `python -m binoculars.serve`)
    may pass only `--flags` that its `--help` lists (or that KNOWN_FLAG_EXCEPTIONS explains);
  - any other command (uv, curl, vf-eval, prime-rl's launchers, …) must match an ALLOWED_UNCHECKED entry, which
    says why it is not checked here. Nothing is skipped silently, and entries nothing uses any more fail too.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Commands that run none of our scripts, by their leading words (after VAR=value prefixes), and why they are not
# checked here. The project files they name are still checked.
ALLOWED_UNCHECKED = {
    "uv run pytest": "the test suite itself",
    "uv run python -m binoculars_rl.real_model": "tests/test_real_model.py runs this CLI",
    "uv venv": "uv creates the virtual environment",
    "uv pip install": "uv installs packages",
    "python3 -m pip install uv": "pip installs uv",
    "command -v uv": "shell check for uv",
    "export": "sets environment variables",
    "uvx vllm serve": "GPU only: a vLLM policy server (vLLM is not a project dependency)",
    "curl": "talks to a running scoring service",
    "printf": "writes a sampling TOML file for vf-eval",
    "vf-eval": "verifiers' CLI; needs a policy server (the env's tests run it on CPU against a scripted server)",
    "uv run rl": "prime-rl checkout only (tests/test_configs.py checks the configs)",
    "uv run inference": "prime-rl checkout only, GPU",
    "uv run env-server": "prime-rl checkout only",
    "uv run orchestrator": "prime-rl checkout only",
    "uv run trainer": "prime-rl checkout only, GPU",
    "git": "clones and checks out prime-rl (network)",
    "cd": "changes directory",
    "uv sync": "prime-rl's own install, in its checkout",
    "uv run python -c": "an import check inside prime-rl's venv",
    "VAR=value": "a shell variable for the commands after it",
}

# (script, flag) that a doc command passes although the script's --help does not list it, and why.
KNOWN_FLAG_EXCEPTIONS = {
    ("scripts/train.py", "--config"): "TrlParser takes --config out before argparse parses; --help omits it",
}

PROJECT_FILE = re.compile(r"^(?:.*/binoculars-rl/)?((?:scripts|benchmarks|configs)/\S+|main\.py)$")
OUR_SCRIPT = re.compile(r"^(main\.py|scripts/\w+\.(?:py|sh)|benchmarks/\w+\.py)$")
OUR_MODULES = {"binoculars.serve"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")


def commands_in(text: str) -> list[list[str]]:
    """The shell words of every command in the ```bash blocks of a markdown text."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            words = []
            for token in [*lexer, ";"]:
                if token in {";", "&&", "||", "|", "&"}:
                    if words:
                        commands.append(words)
                    words = []
                else:
                    words.append(token)
    return commands


COMMANDS = [
    (path.relative_to(ROOT).as_posix(), words)
    for path in DOC_FILES
    for words in commands_in(path.read_text())
]


def our_script(words: list[str]) -> tuple[str | None, list[str]]:
    """(the script or module of ours the command runs, or None; the arguments it passes)."""
    words = [word for word in words if not ENV_ASSIGNMENT.match(word)]
    if words[:2] == ["uv", "run"]:
        words = words[2:]
        while words[:1] in (["--extra"], ["--group"], ["--with"]):
            words = words[2:]
    if words[:1] in (["python"], ["python3"], ["bash"]):
        words = words[1:]
    if words[:1] == ["-m"] and words[1:2] and words[1] in OUR_MODULES:
        return words[1], words[2:]
    if words and OUR_SCRIPT.match(words[0]):
        return words[0], words[1:]
    return None, words


@functools.cache
def help_flags(script: str) -> frozenset[str]:
    """The --flags that `<script> --help` prints."""
    if script in OUR_MODULES:
        argv = [sys.executable, "-m", script, "--help"]
    else:
        full_help = "--help-all" if script == "scripts/train.py" else "--help"  # train.py: TRL's options too
        argv = ["bash" if script.endswith(".sh") else sys.executable, script, full_help]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"`{shlex.join(argv)}` failed:\n{result.stderr[-2000:]}"
    return frozenset(re.findall(r"(?<![\w-])--[A-Za-z0-9][\w-]*", result.stdout))


def test_docs_have_commands():
    assert len(DOC_FILES) > 1, "docs/*.md is missing"
    assert any(source == "README.md" for source, _ in COMMANDS), "README.md has no ```bash block"


def test_named_project_files_exist():
    missing = [
        f"{source}: {match.group(1)}  (in `{shlex.join(words)}`)"
        for source, words in COMMANDS
        for word in words
        if (match := PROJECT_FILE.match(word.rstrip("/"))) and not (ROOT / match.group(1)).exists()
    ]
    assert not missing, "commands name files that do not exist:\n" + "\n".join(missing)


def test_flags_exist_in_help():
    runs = [(source, words, *our_script(words)) for source, words in COMMANDS]
    runs = [run for run in runs if run[2]]
    with ThreadPoolExecutor(max_workers=4) as pool:  # a --help that imports torch and TRL takes 10-20 s
        list(pool.map(help_flags, {script for _, _, script, _ in runs}))
    unknown, excused = [], set()
    for source, words, script, args in runs:
        passed_on = args.index("--") if "--" in args else len(args)  # after `--`: the script hands them on
        for flag in (arg.split("=", 1)[0] for arg in args[:passed_on] if arg.startswith("--")):
            if flag in help_flags(script):
                continue
            if (script, flag) in KNOWN_FLAG_EXCEPTIONS:
                excused.add((script, flag))
            else:
                unknown.append(f"{source}: {script} has no {flag}  (in `{shlex.join(words)}`)")
    assert not unknown, "flags that --help does not list:\n" + "\n".join(unknown)
    unused = set(KNOWN_FLAG_EXCEPTIONS) - excused
    assert not unused, f"KNOWN_FLAG_EXCEPTIONS no longer needed (fixed, or unused): {unused}"


def test_other_commands_are_allow_listed():
    unlisted, used = [], set()
    for source, words in COMMANDS:
        if our_script(words)[0]:
            continue
        line = shlex.join(word for word in words if not ENV_ASSIGNMENT.match(word)) or "VAR=value"
        entry = next((prefix for prefix in ALLOWED_UNCHECKED if f"{line} ".startswith(f"{prefix} ")), None)
        if entry is None:
            unlisted.append(f"{source}: `{shlex.join(words)}`")
        used.add(entry)
    assert not unlisted, "commands neither checked nor allow-listed (add a reason):\n" + "\n".join(unlisted)
    unused = set(ALLOWED_UNCHECKED) - used
    assert not unused, f"ALLOWED_UNCHECKED entries no doc command uses any more: {sorted(unused)}"


def test_prime_rl_installs_name_every_requirement_of_the_env_the_no_deps_line_skips():
    """Beside `uv pip install --no-deps -e …/binoculars_env` (which keeps prime-rl's verifiers), the docs install the
    env's other requirements: every one of its pyproject but verifiers and the detector (installed by that line)."""
    import tomllib

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((ROOT / "environments" / "binoculars_env" / "pyproject.toml").read_text())
    skipped = {"verifiers", "binoculars-detector"}
    expected = [d for d in pyproject["project"]["dependencies"] if Requirement(d).name not in skipped]
    installs = 0
    for doc in DOC_FILES:
        lines = doc.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.startswith("uv pip install --no-deps -e ") and line.endswith(
                "environments/binoculars_env"
            ):
                next_line = lines[number + 1].split("#", 1)[0]
                assert shlex.split(next_line)[:3] == ["uv", "pip", "install"], f"{doc.name}:{number + 2}"
                assert shlex.split(next_line)[3:] == expected, f"{doc.name}:{number + 2}"
                installs += 1
    assert installs == 3  # README's quick start and docs/primerl.md's two
