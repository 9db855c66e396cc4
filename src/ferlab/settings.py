"""Config fields that also declare how a command offers them, so a setting is written once:
the dataclass field, its `--flag` and help text, and its place in a reproducing command."""

from dataclasses import Field, field, fields


def setting(default, help: str, flag: str | None = None, choices: tuple = (), cli: bool = True):
    """A config field and its command-line option (flag: the option's name when not
    --field-name; cli=False: not an option)."""
    meta = {"help": help, "flag": flag, "choices": choices, "cli": cli}
    if isinstance(default, dict | list):
        kind = type(default)
        return field(default_factory=kind, metadata=meta)
    return field(default=default, metadata=meta)


def cli_settings(config_class) -> list[Field]:
    """The fields of `config_class` its command offers as options."""
    return [f for f in fields(config_class) if f.metadata.get("cli", True)]


def flag_of(f: Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")
