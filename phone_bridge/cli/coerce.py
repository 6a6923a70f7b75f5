"""typer's option coercion without pydantic, for the option types ``phone-bridge`` uses.

typer (0.2x) coerces every parameter value, a default of ``None`` included, through a
pydantic ``TypeAdapter`` built on first use: importing pydantic and building the first
adapter costs ~65 ms, more than the rest of ``phone-bridge status``. The commands take
only ``str``, ``float``, ``int``, ``Path`` and ``StrEnum`` options and ``bool`` flags
(``--help`` included), so ``LeanCommand`` and ``LeanGroup`` give those parameters a
coercer of their own before parsing, built from typer's own path and choice checks, with
typer's messages. Any other annotation (lists, files, dates, ``parser=``, ranges) keeps
typer's adapter; so does everything if typer's internals change shape (the lean coercer
is then never installed, and ``tests/phone_bridge/test_cli_startup.py`` says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from typer._click import Context
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam, build_runtime_param
from typer._param_types import coerce_cli_choice, coerce_cli_path
from typer.core import TyperCommand, TyperGroup

__all__ = ["LeanCommand", "LeanGroup", "lean_coercer"]

# pydantic's first error line, as typer shows it ("Invalid value for '--timeout': ...").
_NOT_A_NUMBER = {
    float: "Input should be a valid number, unable to parse string as a number",
    int: "Input should be a valid integer, unable to parse string as an integer",
}


@dataclass(frozen=True)
class _LeanParam(RuntimeParam):
    """Coercion of one str, number, Path or Enum parameter (``kind``), as typer's."""

    kind: str = "str"

    def _coerce_value(self, value: Any, param: Any, ctx: Context) -> Any:
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            # Not from a flag (an environment variable, say): typer's own parsing.
            return build_runtime_param(param.type_descriptor).coerce(value, param, ctx)
        if self.kind == "str":
            return value if isinstance(value, str) else str(value)
        if self.kind == "path":
            path = value if isinstance(value, Path) else Path(value)
            path_type = self.parameter_info.path_type or self.annotation
            # typer's own checks (exists, dir_okay, ...) once the value is a Path.
            return coerce_cli_path(path, self.parameter_info, path_type=path_type,
                                   param=param, ctx=ctx)
        if self.kind == "choice":
            choices = tuple(self.annotation)  # an Enum class
            try:
                return coerce_cli_choice(value, choices=choices,
                                         case_sensitive=self.parameter_info.case_sensitive,
                                         ctx=ctx)
            except ValueError as exc:
                raise BadParameter(f"Value error, {exc}", ctx=ctx, param=param) from None
        number = float if self.kind == "float" else int
        if isinstance(value, number) and not isinstance(value, bool):
            return value
        try:
            return number(value)
        except (TypeError, ValueError):
            raise BadParameter(_NOT_A_NUMBER[number], ctx=ctx, param=param) from None


def lean_coercer(descriptor: Any) -> RuntimeParam | None:
    """The lean coercer for a parameter's ``type_descriptor``, or None (typer's then).

    Args:
        descriptor: typer's ``TypeDescriptor`` of the parameter.

    Returns:
        A ``RuntimeParam`` for a plain bool, str, float, int, Path or Enum parameter;
        None for anything else.
    """
    info = getattr(descriptor, "parameter_info", None)
    annotation = getattr(descriptor, "annotation", None)
    if info is None or getattr(info, "parser", None) is not None:
        return None
    plain = not (descriptor.is_list or descriptor.is_tuple or descriptor.is_file
                 or descriptor.is_datetime or descriptor.is_ranged)
    if not plain:
        return None
    kinds: dict[Any, str] = {str: "str", float: "float", int: "int", bool: "bool"}
    kind = kinds.get(annotation)
    if kind is None and isinstance(annotation, type):
        if issubclass(annotation, Path) and info.path_type in (None, annotation):
            kind = "path"
        elif issubclass(annotation, Enum):
            kind = "choice"
    if kind is None:
        return None
    return _LeanParam(parameter_info=info, annotation=annotation, kind=kind)


def _install(params: list[Any]) -> None:
    """Give each parameter that has no coercer yet the lean one, where one fits."""
    for p in params:
        if getattr(p, "_runtime_param", False) is None and hasattr(p, "type_descriptor"):
            lean = lean_coercer(p.type_descriptor)
            if lean is not None:
                p._runtime_param = lean


class LeanCommand(TyperCommand):
    """A typer command whose plain options are coerced without pydantic."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        _install(self.get_params(ctx))
        return super().parse_args(ctx, args)


class LeanGroup(TyperGroup):
    """A typer group (the root options) coerced without pydantic."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        _install(self.get_params(ctx))
        return super().parse_args(ctx, args)
