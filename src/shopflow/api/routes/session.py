"""The admin UI's sign-in session: sign in (POST), who am I (GET), sign out (DELETE).

The session token travels only in an HttpOnly, SameSite=Lax cookie; the answers carry the CSRF
token the UI sends back as X-CSRF-Token on every write (docs/decisions/0013-admin-ui-stack.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from shopflow.api import deps, schemas
from shopflow.users import sessions

router = APIRouter(prefix="/api/v1/session", tags=["session"])

MAX_BODY = 8 * 1024
FIELDS = {"email", "password", "workspace"}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _answer(session: sessions.Session, csrf_token: str) -> dict[str, Any]:
    return {
        "email": session.email,
        "role": session.role,
        "can_write": session.can_write,
        "workspace": {
            "id": session.workspace.id,
            "name": session.workspace.name,
            "currency": str(session.workspace.settings.get("currency", "USD")),
        },
        "expires_at": session.expires_at.isoformat(),
        "csrf_token": csrf_token,
    }


_SIGN_IN = {
    "type": "object",
    "required": ["email", "password"],
    "additionalProperties": False,
    "properties": {
        "email": {"type": "string", "maxLength": 320},
        "password": {"type": "string", "maxLength": 1024},
        "workspace": {
            "type": "string",
            "description": "which of the person's workspaces (default: the only one)",
        },
    },
}


@router.post("", openapi_extra=schemas.body(_SIGN_IN))
async def sign_in(request: Request) -> Any:
    """{"email", "password", "workspace"?} -> the session (and its cookie), or 400/401/429."""
    # A cross-site form can post only form or text bodies; JSON needs a preflight we never grant.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return _error(400, "content-type: expected application/json")
    data = await deps.json_object(
        request, limit=MAX_BODY, what="a JSON object (email and password)", empty=False
    )
    if isinstance(data, JSONResponse):
        return data
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        return _error(400, f"{unknown[0]}: unknown field; expected {', '.join(sorted(FIELDS))}")
    ctx = deps.context(request)
    try:
        done = sessions.sign_in(
            ctx.engine,
            email=data.get("email"),
            password=data.get("password"),
            workspace_id=data.get("workspace"),
            client=request.client.host if request.client else "unknown",
            secret=ctx.link_secret,
            now=ctx.clock.now(),
        )
    except sessions.TooManyAttempts as exc:
        return JSONResponse(
            {"error": f"email: {exc}"}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )
    except sessions.BadCredentials:
        return _error(401, "email or password: not recognised")
    except sessions.ChooseWorkspace as exc:
        return _error(400, str(exc), workspaces=[{"id": i, "name": n} for i, n in exc.choices])
    except ValueError as exc:
        return _error(400, str(exc))
    answer = JSONResponse(_answer(done.session, done.csrf_token))
    answer.set_cookie(
        deps.SESSION_COOKIE,
        done.token,
        max_age=int(sessions.LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.settings.public_url.startswith("https://"),
    )
    return answer


@router.get("")
def who(request: Request, session: sessions.Session = Depends(deps.signed_in)) -> Any:
    """The signed-in user, role and workspace, with the CSRF token for writes; 401 when signed out."""
    token = request.cookies.get(deps.SESSION_COOKIE, "")
    return _answer(session, sessions.csrf_token(deps.context(request).link_secret, token))


@router.delete("", status_code=204)
def sign_out(request: Request, _session: sessions.Session = Depends(deps.signed_in)) -> Response:
    """End the session (the CSRF token is required: a foreign page cannot sign anyone out)."""
    sessions.sign_out(deps.context(request).engine, token=request.cookies.get(deps.SESSION_COOKIE, ""))
    answer = Response(status_code=204)
    answer.delete_cookie(deps.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return answer
