"""Fixed names of the demo towns and villages (real town names, plausible village names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TownSpec:
    """A demo town: its code number, names, kind and its villages as (name, pinyin) pairs."""

    number: int
    name: str
    name_en: str
    kind: str
    villages: tuple[tuple[str, str], ...]


# Communities get the English suffix "Community", villages "Village"; 会馆回民村 is a Hui
# (Muslim) village, hence its own English form.
TOWNS: tuple[TownSpec, ...] = (
    TownSpec(
        1,
        "史河街道",
        "Shihe Subdistrict",
        "subdistrict",
        (
            ("史河社区", "Shihe"),
            ("振兴路社区", "Zhenxinglu"),
            ("滨河社区", "Binhe"),
            ("城北社区", "Chengbei"),
            ("南关社区", "Nanguan"),
            ("西河社区", "Xihe"),
            ("老街社区", "Laojie"),
            ("新城社区", "Xincheng"),
            ("民主路社区", "Minzhulu"),
        ),
    ),
    TownSpec(
        2,
        "平岗街道",
        "Pinggang Subdistrict",
        "subdistrict",
        (
            ("平岗社区", "Pinggang"),
            ("长安社区", "Chang'an"),
            ("东城社区", "Dongcheng"),
            ("和平社区", "Heping"),
            ("幸福社区", "Xingfu"),
            ("光明社区", "Guangming"),
            ("祥和社区", "Xianghe"),
            ("府前社区", "Fuqian"),
        ),
    ),
    TownSpec(
        100,
        "洪集镇",
        "Hongji Town",
        "town",
        (
            ("洪集村", "Hongji"),
            ("会馆回民村", "Huiguan Hui"),
            ("唐畈村", "Tangfan"),
            ("江店村", "Jiangdian"),
            ("平桥村", "Pingqiao"),
            ("徐冲村", "Xuchong"),
            ("丁集村", "Dingji"),
            ("花园村", "Huayuan"),
            ("光华村", "Guanghua"),
            ("黄湾村", "Huangwan"),
            ("郑楼村", "Zhenglou"),
            ("方集村", "Fangji"),
            ("新河村", "Xinhe"),
            ("河湾村", "Hewan"),
            ("林庄村", "Linzhuang"),
            ("草楼村", "Caolou"),
        ),
    ),
    TownSpec(
        101,
        "姚李镇",
        "Yaoli Town",
        "town",
        (
            ("姚李村", "Yaoli"),
            ("菜园村", "Caiyuan"),
            ("邵岗村", "Shaogang"),
            ("宋店村", "Songdian"),
            ("青龙村", "Qinglong"),
            ("油坊村", "Youfang"),
            ("朱集村", "Zhuji"),
            ("牛集村", "Niuji"),
            ("姜湾村", "Jiangwan"),
            ("太平村", "Taiping"),
            ("金桥村", "Jinqiao"),
            ("和兴村", "Hexing"),
            ("沿岗村", "Yangang"),
            ("曹庙村", "Caomiao"),
            ("杨店村", "Yangdian"),
        ),
    ),
    TownSpec(
        102,
        "三元镇",
        "Sanyuan Town",
        "town",
        (
            ("三元村", "Sanyuan"),
            ("桥元村", "Qiaoyuan"),
            ("龙潭村", "Longtan"),
            ("新建村", "Xinjian"),
            ("八里村", "Bali"),
            ("胡庄村", "Huzhuang"),
            ("白塔村", "Baita"),
            ("马店村", "Madian"),
            ("王楼村", "Wanglou"),
            ("杨湾村", "Yangwan"),
            ("柳林村", "Liulin"),
            ("石桥村", "Shiqiao"),
            ("黄岗村", "Huanggang"),
            ("东岳村", "Dongyue"),
        ),
    ),
    TownSpec(
        103,
        "孙岗镇",
        "Sungang Town",
        "town",
        (
            ("孙岗村", "Sungang"),
            ("乔店村", "Qiaodian"),
            ("大湾村", "Dawan"),
            ("李岗村", "Ligang"),
            ("张畈村", "Zhangfan"),
            ("双河村", "Shuanghe"),
            ("枣林村", "Zaolin"),
            ("红星村", "Hongxing"),
            ("刘集村", "Liuji"),
            ("陈圩村", "Chenwei"),
            ("前进村", "Qianjin"),
            ("团结村", "Tuanjie"),
            ("高塘村", "Gaotang"),
            ("梅山村", "Meishan"),
            ("周湾村", "Zhouwan"),
        ),
    ),
)

DISTRICT_NAME = "叶集区"
DISTRICT_NAME_EN = "Yeji District"


def village_name_en(pinyin: str, kind: str) -> str:
    """Return the English name of a village or community from its pinyin stem."""
    return f"{pinyin} {'Community' if kind == 'community' else 'Village'}"


def grid_name(village_name: str, number: int) -> str:
    """Return the Chinese grid name, e.g. 桥元村第3网格."""
    return f"{village_name}第{number}网格"


def grid_name_en(village_name_en: str, number: int) -> str:
    """Return the English grid name, e.g. "Qiaoyuan Village Grid 3"."""
    return f"{village_name_en} Grid {number}"
