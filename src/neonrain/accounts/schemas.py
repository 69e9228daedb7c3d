"""Request and response bodies of the account endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from neonrain.accounts.passwords import password_problem


def _acceptable_password(password: str) -> str:
    problem = password_problem(password)
    if problem is not None:
        raise PydanticCustomError("password_refused", problem)
    return password


Email = Annotated[EmailStr, StringConstraints(max_length=254)]
#: A password being chosen (register, change, ``neonrain user create``).
Password = Annotated[
    str, Field(min_length=10, max_length=256), AfterValidator(_acceptable_password)
]


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Credentials(StrictBody):
    email: Email
    password: Password


class LoginBody(StrictBody):
    # Any string up to the limits: a wrong shape is just a failed sign-in, never a hint.
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class ChangePasswordBody(StrictBody):
    current_password: Annotated[str, Field(alias="currentPassword", min_length=1, max_length=256)]
    new_password: Annotated[Password, Field(alias="newPassword")]


class DeleteAccountBody(StrictBody):
    confirm_email: Annotated[str, Field(alias="confirmEmail", min_length=1, max_length=254)]


class UserOut(BaseModel):
    id: str
    email: str | None


class UserEnvelope(BaseModel):
    user: UserOut


class AuthResult(BaseModel):
    user: UserOut
    token: str
