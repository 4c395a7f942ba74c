"""The asyncio client: AsyncSession, ws_connect and AsyncWebSocket."""
