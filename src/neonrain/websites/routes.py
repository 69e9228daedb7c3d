"""``/api/servers/:serverId/websites``: a server configuration's important websites."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from neonrain.servers.deps import OwnedConfig
from neonrain.state import Db, State
from neonrain.websites import service
from neonrain.websites.fetch import AddressPolicy
from neonrain.websites.schemas import AddWebsiteBody, WebsiteList, WebsiteOut

router = APIRouter(prefix="/api/servers/{server_id}/websites", tags=["websites"])


@router.get("", response_model=WebsiteList)
async def list_websites(config: OwnedConfig, db: Db) -> WebsiteList:
    return WebsiteList(websites=await service.list_websites(db, config.id))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebsiteOut)
async def add_website(
    body: AddWebsiteBody, config: OwnedConfig, db: Db, state: State
) -> WebsiteOut:
    policy = AddressPolicy(allow_private=state.settings.allow_private_urls)
    return await service.add_website(db, config, body.url, body.name, policy=policy)


@router.get("/{website_id}", response_model=WebsiteOut)
async def get_website(website_id: str, config: OwnedConfig, db: Db) -> WebsiteOut:
    return await service.get_website(db, config.id, website_id)


@router.post(
    "/{website_id}/scrape", status_code=status.HTTP_202_ACCEPTED, response_model=WebsiteOut
)
async def scrape_website(website_id: str, config: OwnedConfig, db: Db) -> WebsiteOut:
    return await service.request_scrape(db, config, website_id)


@router.delete("/{website_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_website(website_id: str, config: OwnedConfig, db: Db) -> Response:
    await service.delete_website(db, config, website_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
