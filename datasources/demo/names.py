"""Deterministic, plausible Chinese personal names and mobile numbers for the demo."""

from __future__ import annotations

import numpy as np

# Common surnames of the Anhui/Henan border region, weighted roughly by frequency.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
)
_SURNAME_WEIGHTS = np.linspace(3.0, 0.4, len(SURNAMES))
_SURNAME_WEIGHTS /= _SURNAME_WEIGHTS.sum()

GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红梅建国建华志强海燕春兰德胜金凤"
    "文静永红晓东家宝玉兰淑珍凤英长江春生树林秀兰国平桂兰立新红霞宏伟子轩欣怡浩然梓涵雨轩思远"
)
# Mobile prefixes of the three carriers.
PHONE_PREFIXES = (
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "158",
    "159",
    "177",
    "180",
    "181",
    "182",
    "186",
    "187",
    "189",
    "199",
)


class NameMaker:
    """Make names and phone numbers from one seeded generator, in a reproducible order."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._phones: set[str] = set()

    def name(self) -> str:
        """Return a two- or three-character name."""
        surname = SURNAMES[int(self._rng.choice(len(SURNAMES), p=_SURNAME_WEIGHTS))]
        n_given = 1 if self._rng.random() < 0.3 else 2
        idx = self._rng.integers(0, len(GIVEN_CHARS), size=n_given)
        return surname + "".join(GIVEN_CHARS[int(i)] for i in idx)

    def phone(self) -> str:
        """Return an 11-digit mobile number not handed out before by this maker."""
        while True:
            prefix = PHONE_PREFIXES[int(self._rng.integers(0, len(PHONE_PREFIXES)))]
            number = prefix + f"{int(self._rng.integers(0, 10**8)):08d}"
            if number not in self._phones:
                self._phones.add(number)
                return number
