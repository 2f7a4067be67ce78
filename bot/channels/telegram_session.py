"""aiogram's HTTP session, with a lean way to make the calls of a conversation.

Each answer to a person costs two or three Bot API calls (acknowledge the press, mark the
pressed choice, send the next question). Through aiogram, each call builds a pydantic model
of the method, dumps it back to a dict, encodes it as form data (percent-encoding every
Vietnamese letter), and validates the answer into pydantic models (a whole ``Message`` for a
sent message) that the bot never reads. bench/conversation.py measured that at about a
millisecond of CPU per update, more than the rest of the platform side together.

:meth:`LeanSession.call` posts the parameters, as the channel built them, as one JSON body,
and returns the ``result`` of the answer as plain JSON. Failures are not taken lightly: any
answer that is not a clean success goes through aiogram's own ``check_response``, so a 429
is still :class:`~aiogram.exceptions.TelegramRetryAfter` with its ``retry_after``, a 403
:class:`~aiogram.exceptions.TelegramForbiddenError`, a proxy's HTML page
:class:`~aiogram.exceptions.ClientDecodeError`, and ``bot.delivery.call_with_retry`` treats
them exactly as before. getUpdates goes the same way (the channel reads the updates as JSON:
bot/channels/telegram_updates.py). Everything else (getMe, setWebhook, the command menu,
files) goes through aiogram as usual.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiogram import __version__ as aiogram_version
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar
from aiohttp.hdrs import USER_AGENT
from aiohttp.http import SERVER_SOFTWARE

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod

JSON_HEADERS = {"Content-Type": "application/json"}


def _dumps(params: dict[str, Any]) -> bytes:
    # UTF-8 as is: \u escapes would make a Vietnamese text twice as long on the wire.
    return json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()


class LeanSession(AiohttpSession):
    """An :class:`AiohttpSession` that can also call a method from a plain dict (JSON body,
    result not validated), and keeps no cookies."""

    async def create_session(self) -> ClientSession:
        # aiogram's, with a cookie jar that keeps nothing: the Bot API sets no cookies, and
        # aiohttp's jar filters and updates cookies on every request and answer (a third of
        # the client's CPU per call in a local measurement).
        if self._should_reset_connector:
            await self.close()
        if self._session is None or self._session.closed:
            self._session = ClientSession(
                connector=self._connector_type(**self._connector_init),
                headers={USER_AGENT: f"{SERVER_SOFTWARE} aiogram/{aiogram_version}"},
                cookie_jar=DummyCookieJar(),
            )
            self._should_reset_connector = False
        return self._session

    async def call(
        self,
        bot: Bot,
        method: type[TelegramMethod[Any]],
        params: dict[str, Any],
        *,
        request_timeout: float | None = None,
    ) -> Any:
        """Call ``method`` with ``params`` (JSON-ready: no files, no ``None`` values) and
        return the answer's ``result`` as parsed JSON; failures raise as aiogram raises them.

        ``request_timeout``: seconds for the whole call, the session's own when not given (a long
        poll needs its polling timeout on top).
        """
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=_dumps(params),
                headers=JSON_HEADERS,
                timeout=ClientTimeout(
                    total=self.timeout if request_timeout is None else request_timeout
                ),
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            raise TelegramNetworkError(
                method=self._method(method, params), message="Request timeout error"
            ) from exc
        except ClientError as exc:
            raise TelegramNetworkError(
                method=self._method(method, params), message=f"{type(exc).__name__}: {exc}"
            ) from exc
        if 200 <= status <= 226:
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("ok") is True:
                return answer.get("result")
        # Not a clean success: aiogram decides which error it is, as for any other call.
        self.check_response(
            bot=bot,
            method=self._method(method, params),
            status_code=status,
            content=raw.decode("utf-8", errors="replace"),
        )
        # check_response returns only for a 2xx with "ok": true, which was returned above.
        raise TelegramAPIError(method=self._method(method, params), message="unexpected answer")

    @staticmethod
    def _method(method: type[TelegramMethod[Any]], params: dict[str, Any]) -> Any:
        """The method as aiogram's exceptions carry it; built only when a call failed."""
        return method.model_construct(**params)
