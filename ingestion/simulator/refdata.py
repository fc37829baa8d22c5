"""Static reference data of the simulated utility: regions, tariffs, industries, name parts.

The simulated utility is a provincial grid company in Fujian province (region codes from
GB/T 2260). Prices are typical catalogue prices in CNY per kWh.
"""

from __future__ import annotations

# (county code, county name, city code, city name, population weight, urban share)
REGIONS: list[tuple[str, str, str, str, float, float]] = [
    ("350102", "鼓楼区", "350100", "福州市", 1.0, 0.98),
    ("350103", "台江区", "350100", "福州市", 0.7, 0.98),
    ("350104", "仓山区", "350100", "福州市", 1.1, 0.90),
    ("350121", "闽侯县", "350100", "福州市", 0.9, 0.45),
    ("350181", "福清市", "350100", "福州市", 1.3, 0.50),
    ("350302", "城厢区", "350300", "莆田市", 0.6, 0.85),
    ("350322", "仙游县", "350300", "莆田市", 0.9, 0.35),
    ("350503", "丰泽区", "350500", "泉州市", 0.8, 0.95),
    ("350582", "晋江市", "350500", "泉州市", 2.0, 0.60),
    ("350583", "南安市", "350500", "泉州市", 1.5, 0.45),
    ("350524", "安溪县", "350500", "泉州市", 1.0, 0.30),
    ("350602", "芗城区", "350600", "漳州市", 0.7, 0.90),
    ("350623", "漳浦县", "350600", "漳州市", 0.9, 0.30),
]

# Region codes of other provinces, for migrants' resident IDs.
OTHER_REGION_CODES = [
    "110105", "310104", "320102", "330106", "340104", "360102", "430104", "440106",
    "450103", "500103", "510107", "520102", "410105", "420106", "370102", "130102",
]

CUSTOMER_TYPES = ["residential", "general_commercial_industrial", "large_industrial", "agricultural"]
RES, GCI, LI, AGR = range(4)
CUSTOMER_TYPE_SHARE = [0.85, 0.12, 0.01, 0.02]

# (tariff code, name, customer type, price CNY/kWh) - price with 4 decimals.
TARIFFS: list[tuple[str, str, int, str]] = [
    ("RES-1", "居民生活用电 不满1千伏", RES, "0.5583"),
    ("RES-LI", "居民生活用电 低保户", RES, "0.4983"),
    ("GCI-LV", "一般工商业用电 不满1千伏", GCI, "0.8142"),
    ("GCI-10", "一般工商业用电 1-10千伏", GCI, "0.7892"),
    ("LI-10", "大工业用电 1-10千伏", LI, "0.6687"),
    ("LI-35", "大工业用电 35千伏", LI, "0.6487"),
    ("LI-110", "大工业用电 110千伏", LI, "0.6287"),
    ("AGR-LV", "农业生产用电 不满1千伏", AGR, "0.5096"),
    ("AGR-10", "农业生产用电 1-10千伏", AGR, "0.4946"),
]

VOLTAGES = ["0.22kV", "0.4kV", "10kV", "35kV", "110kV"]
SETTLEMENTS = ["monthly", "split_monthly", "prepaid"]
MONTHLY, SPLIT, PREPAID = range(3)
PAY_METHODS = ["counter", "bank_debit", "online", "prepaid_card"]
COUNTER, BANK, ONLINE, CARD = range(4)
KINDS = ["person", "organisation"]

INDUSTRIES = list("ABCDEFGHIJKLMNOPQRST")
# Industry mix of general commercial/industrial customers (GB/T 4754 sections).
GCI_INDUSTRY_MIX = {
    "C": 0.18, "G": 0.30, "H": 0.12, "F": 0.05, "K": 0.05, "I": 0.03, "L": 0.04, "M": 0.02,
    "N": 0.02, "O": 0.03, "P": 0.03, "Q": 0.03, "R": 0.03, "S": 0.04, "E": 0.01, "J": 0.02,
}
LI_INDUSTRY_MIX = {"C": 0.82, "B": 0.08, "D": 0.05, "E": 0.05}
# Sensitivity of enterprise health to the industry activity cycle.
INDUSTRY_BETA = {
    "A": 1.0, "B": 2.5, "C": 3.0, "D": 1.0, "E": 1.0, "F": 3.5, "G": 2.0, "H": 2.5, "I": 1.5,
    "J": 1.0, "K": 4.0, "L": 2.0, "M": 1.5, "N": 1.5, "O": 0.3, "P": 0.5, "Q": 0.5, "R": 2.0,
    "S": 1.5, "T": 1.0,
}
# Annual trend growth of the activity index.
INDUSTRY_TREND = {
    "A": 0.02, "B": -0.01, "C": 0.03, "D": 0.03, "E": 0.02, "F": 0.00, "G": 0.04, "H": 0.05,
    "I": 0.08, "J": 0.05, "K": -0.02, "L": 0.04, "M": 0.06, "N": 0.03, "O": 0.02, "P": 0.02,
    "Q": 0.04, "R": 0.05, "S": 0.03, "T": 0.03,
}
# Industries that can be hit by a simulated downturn (first, second downturn).
DOWNTURN_CANDIDATES = (["C", "F", "G"], ["K", "F", "H"])

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文志鹏飞俊辉宇浩然婷雪梅"
    "琳晨阳子轩欣怡佳慧颖博文斌彬海燕丹凤兵健亮鑫宏毅凯峰瑞荣诚晓春秋冬松柏林森淑珍美玲"
)
FIRM_CHARS = "恒鑫华盛源泰达兴宏润通海瑞丰祥隆嘉佳腾辉凯永金福安博信德和顺锦鸿创新远天正元昌"
INDUSTRY_FIRM_WORDS = {
    "A": ["农业开发", "果蔬专业合作社", "茶叶专业合作社", "水产养殖"],
    "B": ["矿业", "石材开采"],
    "C": ["机械制造", "纺织", "鞋业", "食品", "电子科技", "塑胶制品", "陶瓷", "服装", "包装材料"],
    "D": ["热电", "燃气", "水务"],
    "E": ["建材", "环保科技"],
    "F": ["建设工程", "建筑工程", "装饰工程"],
    "G": ["商贸", "贸易", "超市", "百货", "五金经营部"],
    "H": ["餐饮管理", "酒店", "食府"],
    "I": ["网络科技", "信息技术"],
    "J": ["融资担保", "小额贷款"],
    "K": ["房地产开发", "物业管理", "置业"],
    "L": ["投资管理", "商务服务", "租赁"],
    "M": ["检测技术", "设计咨询"],
    "N": ["园林绿化", "环境卫生"],
    "O": ["家政服务", "汽车维修"],
    "P": ["培训学校", "幼儿园"],
    "Q": ["诊所", "医疗器械"],
    "R": ["文化传媒", "体育健身", "旅游开发"],
    "S": ["社会服务", "协会"],
    "T": ["家庭服务"],
}
LEGAL_FORMS = ["有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司"]
TOWNS = (
    "城关镇 青口镇 上街镇 南屿镇 甘蔗镇 龙田镇 高山镇 东张镇 安海镇 陈埭镇 磁灶镇 水头镇 官桥镇 蓬壶镇 "
    "湖头镇 旧镇 佛昙镇"
).split()
VILLAGES = (
    "东村 西村 南山村 北岭村 前洋村 后埔村 新厝村 溪头村 上坂村 下洋村 石龙村 林兜村 坑口村 湖尾村"
).split()
ROADS = (
    "人民路 解放路 建设路 中山路 五一路 八一七路 工业路 滨江路 "
    "温泉路 学府路 金山大道 江滨路 南环路 北大街 新华路 泉秀路 世纪大道"
).split()
ESTATES = (
    "阳光花园 金域华府 江南新城 滨江国际 万科城 碧桂园 "
    "融侨锦江 世茂云图 正荣府 海峡城 东方名城 学府名苑"
).split()
INDUSTRIAL_PARKS = "经济开发区 高新技术产业园 工业园区 科技园 物流园 食品工业园".split()
EMAIL_DOMAINS_PERSON = ["qq.com", "qq.com", "qq.com", "163.com", "126.com", "sina.com", "139.com"]
EMAIL_DOMAINS_ORG = ["163.com", "qq.com", "126.com", "aliyun.com"]
PHONE_PREFIXES = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183",
    "185", "186", "187", "188", "189", "191", "198", "199",
]
