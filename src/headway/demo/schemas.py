"""Request bodies and the dict shapes the API answers with."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from headway.demo.models import Agent, Execution, Post, PostStatus, Subscriber, Tag, User


def clean_text(value: str) -> str:
    """Reject what no database column should hold: NUL and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text") from None
    return value


Text = Annotated[str, AfterValidator(clean_text)]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(clean_text),
]
TagName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(clean_text),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(clean_text),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostIn(_Body):
    title: Title
    body: Annotated[Text, Field(max_length=100_000)] = ""
    status: PostStatus = PostStatus.draft
    tags: Annotated[list[TagName], Field(max_length=20)] = []


class PostPatch(_Body):
    title: Title | None = None
    body: Annotated[Text, Field(max_length=100_000)] | None = None
    status: PostStatus | None = None
    tags: Annotated[list[TagName], Field(max_length=20)] | None = None


class SubscriberIn(_Body):
    email: Email


class AgentIn(_Body):
    name: Title
    description: Annotated[Text, Field(max_length=10_000)] = ""
    model: Annotated[Text, Field(min_length=1, max_length=100)] = "demo-small"
    system_prompt: Annotated[Text, Field(max_length=20_000)] = ""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def user_out(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "name": user.name, "email": user.email, "role": user.role}


def tag_out(tag: Tag) -> str:
    return tag.name


def subscriber_out(sub: Subscriber) -> dict[str, Any]:
    return {"id": sub.id, "email": sub.email, "created_at": _iso(sub.created_at)}


POST_FIELDS = (
    "id",
    "title",
    "body",
    "status",
    "published_at",
    "author_id",
    "view_count",
    "created_at",
    "updated_at",
)
POST_INCLUDES = ("author", "tags", "subscribers")
AGENT_FIELDS = (
    "id",
    "name",
    "description",
    "model",
    "system_prompt",
    "owner_id",
    "created_at",
    "updated_at",
)
AGENT_INCLUDES = ("owner", "executions")


def post_out(post: Post, include: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": post.id,
        "title": post.title,
        "body": post.body,
        "status": post.status,
        "published_at": _iso(post.published_at),
        "author_id": post.author_id,
        "view_count": post.view_count,
        "created_at": _iso(post.created_at),
        "updated_at": _iso(post.updated_at),
    }
    if "author" in include:
        out["author"] = user_out(post.author)
    if "tags" in include:
        out["tags"] = [tag_out(t) for t in post.tags]
    if "subscribers" in include:
        out["subscribers"] = [subscriber_out(s) for s in post.subscribers]
    return out


def execution_out(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.id,
        "agent_id": execution.agent_id,
        "status": execution.status,
        "progress": execution.progress,
        "input": execution.input,
        "output": execution.output,
        "error": execution.error,
        "attempts": execution.attempts,
        "created_at": _iso(execution.created_at),
        "started_at": _iso(execution.started_at),
        "finished_at": _iso(execution.finished_at),
    }


def agent_out(agent: Agent, include: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": agent.id,
        "name": agent.name,
        "description": agent.description,
        "model": agent.model,
        "system_prompt": agent.system_prompt,
        "owner_id": agent.owner_id,
        "created_at": _iso(agent.created_at),
        "updated_at": _iso(agent.updated_at),
    }
    if "owner" in include:
        out["owner"] = user_out(agent.owner)
    if "executions" in include:
        out["executions"] = [execution_out(e) for e in agent.executions]
    return out
