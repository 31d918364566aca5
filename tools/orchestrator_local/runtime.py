"""Running Lambda handlers in-process, as the Lambda runtime would call them.

One handler module per function, loaded from its folder under ``functions/``
(each is ``app.py``, so modules get unique names). Invocations are serialized
per process: a Lambda container runs one event at a time, and the handler
libraries (Powertools' resolver) keep per-invocation state in module globals.
Concurrency comes from several processes (see :mod:`.gateway`'s worker pool).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from orchestrator_local.resources import function_arn
from orchestrator_local.template import Function, Template


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 29
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.invoked_function_arn = function_arn(self.function_name)
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """A handler raised: carries the Lambda-style error payload."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message

    def payload(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.message}


class InProcessRuntime:
    """Loads and invokes the template's handlers in this process."""

    def __init__(self, template: Template | None = None) -> None:
        self.functions: dict[str, Function] = (template or Template()).functions
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.RLock()
        self._after: Callable[[], object] | None = None
        self._consumers: frozenset[str] = frozenset()

    def follow_streams(self, pump: Callable[[], object] | None, consumers: frozenset[str] = frozenset()) -> None:
        """Run ``pump`` (deliver the table streams' records) after every invocation of a function
        that is not one of the stream ``consumers``: in-process, a handler's writes are folded by
        the time it returns. None stops it."""
        self._after, self._consumers = pump, consumers

    @contextmanager
    def streams_held(self) -> Iterator[None]:
        """No stream delivery after the invocations inside the block; what they wrote is
        delivered when it ends (e.g. to count what a handler itself does)."""
        after, self._after = self._after, None
        try:
            yield
        finally:
            self._after = after
            if after is not None:
                after()

    def handler(self, logical_id: str) -> Callable[[Any, Any], Any]:
        module = self._modules.get(logical_id)
        if module is None:
            function = self.functions[logical_id]
            spec = importlib.util.spec_from_file_location(f"lambda_{logical_id}", function.module_path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {function.module_path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[logical_id] = module
        handler: Callable[[Any, Any], Any] = getattr(module, self.functions[logical_id].handler_name)
        return handler

    def warm(self, logical_ids: Iterable[str]) -> None:
        """Load these handlers and create the AWS clients now, as a Lambda container's init
        does (one handler at a time under the invocation lock: an event that arrives meanwhile
        waits for one import at most)."""
        for logical_id in logical_ids:
            with self._lock:
                self.handler(logical_id)
        from orchestrator import aws

        with contextlib.suppress(Exception):  # e.g. no region: the first call that needs one says so
            aws.create_clients()

    def drain(self) -> None:
        """Wait until no invocation is running (tests stop their mocks only after that)."""
        with self._lock:
            return

    def invoke(self, logical_id: str, event: Any) -> Any:
        """The handler's result; :class:`FunctionError` if it raised."""
        with self._lock:
            handler = self.handler(logical_id)
            try:
                timeout = self.functions[logical_id].timeout_seconds
                return handler(event, LambdaContext(function_name=logical_id, timeout_seconds=timeout))
            except Exception as exc:
                traceback.print_exc()
                raise FunctionError(type(exc).__name__, str(exc)) from exc
            finally:
                if self._after is not None and logical_id not in self._consumers:
                    self._after()


Invoke = Callable[[str, Any], Any]


def install_moto_lambda_router(invoke: Invoke, known: set[str]) -> None:
    """Route moto Lambda ``Invoke`` calls for the template's functions to ``invoke``.

    moto runs Lambda code only in Docker; Step Functions ``lambda:invoke``
    tasks reach moto's Lambda backend, so this is where local mode takes
    over. Unknown function names fall through to moto.
    """
    from moto.awslambda.models import LambdaBackend

    original = getattr(LambdaBackend, "_orchestrator_original_invoke", LambdaBackend.invoke)

    def routed_invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> Any:
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        if name not in known:
            return original(self, function_name, qualifier, body, headers, response_headers)
        event = json.loads(body) if body else {}
        try:
            result = invoke(name, event)
        except FunctionError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error.payload()).encode()
        return json.dumps(result).encode()

    LambdaBackend._orchestrator_original_invoke = original  # type: ignore[attr-defined]
    LambdaBackend.invoke = routed_invoke  # type: ignore[method-assign]
    install_moto_s3_notification_router(invoke, known)


def install_moto_s3_notification_router(invoke: Invoke, known: set[str]) -> None:
    """Deliver moto's S3 event notifications for the template's functions to ``invoke``.

    moto sends a bucket's ``LambdaFunctionConfigurations`` events through
    ``moto.s3.notifications._invoke_awslambda``, which runs the function in Docker; here the
    handler runs as the API's do (in-process, or in a worker of ``make serve``). moto calls it
    inside the ``PutObject`` that created the object, in the thread serving that request:
    the object is stored by then, and no lock of moto's is held (the DynamoDB write lock of
    :mod:`.moto_patches` is taken per write, so the handler's own writes cannot wait on it).
    The upload's answer therefore waits for the verification, where AWS delivers the event
    asynchronously a moment later; a handler error is swallowed, as AWS would only retry it.
    """
    from moto.s3 import notifications

    original = getattr(notifications, "_orchestrator_original_invoke_awslambda", notifications._invoke_awslambda)

    def routed(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        name = fn_arn.rsplit(":", 1)[-1]
        if name not in known:
            original(account_id, event_body, fn_arn, region_name)
            return
        # An error is printed by the runtime; S3's asynchronous invocation has no caller to tell.
        with contextlib.suppress(FunctionError):
            invoke(name, event_body)

    notifications._orchestrator_original_invoke_awslambda = original  # type: ignore[attr-defined]
    notifications._invoke_awslambda = routed


def uninstall_moto_s3_notification_router() -> None:
    """moto's own delivery again (a test's mock ends)."""
    from moto.s3 import notifications

    original = getattr(notifications, "_orchestrator_original_invoke_awslambda", None)
    if original is not None:
        notifications._invoke_awslambda = original
