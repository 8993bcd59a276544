//! Deterministic Chinese-looking names for people, companies and institutions.

use std::collections::BTreeSet;

use rand::RngExt;

use super::rng::SimRng;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "段", "雷", "侯", "龙",
    "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "武", "戴", "莫", "孔",
];

const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀", "英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "霞", "平", "刚", "桂", "华", "建", "国", "文", "辉", "力", "鹏", "宇", "浩",
    "婷", "雪", "琳", "晨", "欣", "怡", "子", "轩", "梓", "涵", "俊", "博", "嘉", "昊", "然", "思",
    "雨", "佳", "诺", "晓", "东", "海", "波", "峰", "斌", "玲", "红", "梅", "兰", "云", "飞", "鑫",
    "亮", "凯", "龙", "燕", "萍", "春", "玉", "鸿", "志", "成", "新", "永", "家", "荣", "慧", "倩",
];

const BRAND: &[&str] = &[
    "恒", "达", "鑫", "源", "华", "盛", "泰", "隆", "丰", "汇", "通", "宏", "远", "嘉", "信", "诚",
    "德", "安", "康", "瑞", "祥", "和", "美", "佳", "金", "银", "广", "富", "润", "星", "辰", "锦",
    "天", "博", "创", "联", "智", "新", "凯", "旭", "聚", "鼎", "海", "宇", "昌", "东", "方", "中",
    "正", "兴", "发", "永", "益", "明", "卓", "峰", "腾", "启", "灿", "悦", "晟", "弘", "邦", "融",
];

/// Real institution names that random brand pairs could spell.
const DENIED_BRANDS: &[&str] = &[
    "中信", "广发", "恒丰", "兴业", "汇付", "通联", "联动", "富友", "海科", "汇聚", "华融", "东方",
    "中天", "天安", "安信", "华安", "华泰", "泰康", "中泰", "方正", "中金", "广联", "联通", "信通",
];

pub(crate) const INDUSTRY_RETAIL: &[&str] = &[
    "商贸",
    "贸易",
    "餐饮管理",
    "食品",
    "服饰",
    "超市",
    "便利店",
    "百货",
    "大药房",
    "酒店管理",
    "汽车服务",
    "美容美发",
    "文化用品",
    "电器",
    "烘焙",
    "水果",
    "茶业",
    "五金",
];
pub(crate) const INDUSTRY_TECH: &[&str] = &[
    "信息科技",
    "网络科技",
    "科技",
    "信息技术",
    "商务服务",
    "数据服务",
    "电子商务",
];
pub(crate) const INDUSTRY_GENERAL: &[&str] = &[
    "实业",
    "物流",
    "建材",
    "电子",
    "制造",
    "文化传媒",
    "投资咨询",
    "供应链管理",
    "国际贸易",
    "工程",
    "装饰工程",
    "印务",
    "包装",
    "机械设备",
    "纺织",
];
pub(crate) const INDUSTRY_VENUE: &[&str] = &["商业管理", "餐饮管理", "市场管理", "美食城管理"];

fn pick<'a>(rng: &mut SimRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// Generates names; companies and institutions are kept unique.
#[derive(Debug, Default)]
pub(crate) struct NameGen {
    used: BTreeSet<String>,
}

impl NameGen {
    pub(crate) fn person(&mut self, rng: &mut SimRng) -> String {
        let mut name = String::from(pick(rng, SURNAMES));
        name.push_str(pick(rng, GIVEN));
        if rng.random_bool(0.6) {
            name.push_str(pick(rng, GIVEN));
        }
        name
    }

    fn brand(&mut self, rng: &mut SimRng) -> String {
        loop {
            let brand = format!("{}{}", pick(rng, BRAND), pick(rng, BRAND));
            let chars: Vec<char> = brand.chars().collect();
            if chars[0] != chars[1] && !DENIED_BRANDS.contains(&brand.as_str()) {
                return brand;
            }
        }
    }

    fn unique(&mut self, rng: &mut SimRng, make: impl Fn(&str) -> String) -> String {
        for _ in 0..32 {
            let brand = self.brand(rng);
            let name = make(&brand);
            if self.used.insert(name.clone()) {
                return name;
            }
        }
        // Name space exhausted: disambiguate with a counter.
        let brand = self.brand(rng);
        let mut n = 2usize;
        loop {
            let name = make(&format!("{brand}{n}"));
            if self.used.insert(name.clone()) {
                return name;
            }
            n += 1;
        }
    }

    pub(crate) fn company(&mut self, rng: &mut SimRng, city: &str, industries: &[&str]) -> String {
        let industry = pick(rng, industries);
        self.unique(rng, |brand| format!("{city}{brand}{industry}有限公司"))
    }

    pub(crate) fn bank(&mut self, rng: &mut SimRng) -> String {
        self.unique(rng, |brand| format!("{brand}银行"))
    }

    pub(crate) fn payment_institution(&mut self, rng: &mut SimRng) -> String {
        self.unique(rng, |brand| format!("{brand}支付"))
    }

    pub(crate) fn utility(&mut self, rng: &mut SimRng, city: &str, service: &str) -> String {
        self.unique(rng, |brand| format!("{city}{brand}{service}有限公司"))
    }

    pub(crate) fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_owned());
    }
}
