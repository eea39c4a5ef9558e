"""Code interpreter containers: the files a response's code ran on and produced, served until cleared."""

from __future__ import annotations

from dataclasses import dataclass, field

from threadrunner.clock import epoch, now

from local.emulator.errors import not_found
from local.emulator.items import new_id


@dataclass(frozen=True)
class ContainerFile:
    id: str
    filename: str
    data: bytes


@dataclass
class Container:
    id: str
    created_at: int
    files: dict[str, ContainerFile] = field(default_factory=dict)

    def add(self, filename: str, data: bytes) -> ContainerFile:
        stored = ContainerFile(new_id("cfile"), filename, data)
        self.files[stored.id] = stored
        return stored


class ContainerStore:
    """Not thread-safe by itself: the server holds its lock around every request."""

    def __init__(self) -> None:
        self._containers: dict[str, Container] = {}

    def create(self) -> Container:
        container = Container(new_id("cntr"), epoch(now()))
        self._containers[container.id] = container
        return container

    def get(self, container_id: str, *, param: str | None = None) -> Container:
        container = self._containers.get(container_id)
        if container is None:
            raise not_found(f"Container with id '{container_id}' not found.", param=param)
        return container

    def file(self, container_id: str, file_id: str) -> ContainerFile:
        container = self.get(container_id)
        stored = container.files.get(file_id)
        if stored is None:
            raise not_found(f"File with id '{file_id}' not found in container '{container_id}'.")
        return stored

    def clear(self) -> None:
        self._containers.clear()
