"""An OpenFeature provider (``openfeature-sdk``) over headway flags.

::

    from openfeature import api
    from headway.flags.openfeature import HeadwayProvider

    api.set_provider(HeadwayProvider(hw.flags))
    client = api.get_client()
    client.get_boolean_value("vision-analysis", False, EvaluationContext(user_id,
                             {"tenant": tenant_id}))

The targeting key is the ``user``; the ``tenant`` attribute selects a tenant's own flag;
other attributes feed the rules. Reasons are TARGETING_MATCH, SPLIT, DEFAULT, DISABLED
and ERROR (with FLAG_NOT_FOUND or TYPE_MISMATCH). Evaluation reads the in-process
snapshot, so the sync and async methods never wait on I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider
from openfeature.provider.metadata import Metadata

if TYPE_CHECKING:
    from headway.flags.core import Flags

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class HeadwayProvider(AbstractProvider):
    def __init__(self, flags: Flags) -> None:
        super().__init__()
        self.flags = flags

    def get_metadata(self) -> Metadata:
        return Metadata(name="headway")

    def _resolve(
        self, key: str, default: T, ctx: EvaluationContext | None, kinds: tuple[type, ...]
    ) -> FlagResolutionDetails[T]:
        attrs: dict[str, Any] = dict(ctx.attributes) if ctx else {}
        tenant = attrs.pop("tenant", None)
        user = ctx.targeting_key if ctx and ctx.targeting_key else attrs.pop("user", None)
        ev = self.flags.evaluate_now(
            key,
            tenant=None if tenant is None else str(tenant),
            user=None if user is None else str(user),
            context=attrs,
            default=default,
        )
        if ev.error_code is not None:
            return FlagResolutionDetails(
                default, ErrorCode(ev.error_code), ev.error_message, ev.reason
            )
        value: Any = ev.value
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            message = f"flag {key!r} is {type(value).__name__}, not {kinds[0].__name__}"
            return FlagResolutionDetails(default, ErrorCode.TYPE_MISMATCH, message, "ERROR")
        return FlagResolutionDetails(cast("T", value), reason=ev.reason, variant=ev.variant)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, (float, int))

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        return self._resolve(flag_key, default_value, evaluation_context, (dict, list))
