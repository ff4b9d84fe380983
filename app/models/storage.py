"""Storage places (保管場所, F3.5): where each card waits until it leaves the office."""
from flask_appbuilder import Model
from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column


class StoragePlace(Model):
    __tablename__ = "storage_place"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)  # 金庫A-棚2-箱05
    capacity: Mapped[int] = mapped_column(Integer, nullable=False, default=100)
    sort_key: Mapped[int] = mapped_column(Integer, nullable=False, default=0, index=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)

    def __repr__(self) -> str:
        return self.code
