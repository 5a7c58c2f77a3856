//! Generated demo data for the `crm-base` template (`serve --demo`): a deterministic,
//! seeded generator of a realistic Chinese SME sales database — customers with company
//! names, addresses, phones and tax numbers, their contacts, leads, opportunities spread
//! over the pipeline, follow-ups over the last year, quotes with lines, orders with
//! lines and payments — written through the records store, so audit, outbox (search
//! index) and workflow stay as consistent as for any other write.
//!
//! It runs after the template's samples are loaded: owners are the sample sales reps,
//! quote lines use the sample products at their list prices.
//!
//! **Idempotent and resumable.** The plan depends only on the seed: the n-th customer
//! (with everything that belongs to it) is the same whatever the count and however
//! often the generator runs. Each batch of customers is one transaction, and a
//! customer's related records are written in the same transaction as the customer, so
//! a customer that exists was written completely. Before writing a batch the generator
//! asks which of its customers exist and skips them: running it again — after a
//! restart, after an interrupted run, or with a larger count — adds only what is
//! missing. Dates are relative to the day of the run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta};
use pinyin::ToPinyin;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, Query};
use serde_json::{Map, Value, json};

use crate::auth::Access;
use crate::auth::users;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::store::records::{QueryRequest, Records};
use crate::tenant::Tenant;

/// Customers `serve --demo` generates unless told otherwise.
pub const DEFAULT_CUSTOMERS: usize = 5000;
/// The seed of the shipped demo: the same data on every machine.
pub const DEFAULT_SEED: u64 = 20_260_101;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many customers to generate (related records scale with it).
    pub customers: usize,
    pub seed: u64,
    /// Customers per transaction.
    pub batch_size: usize,
    /// Show a progress bar on the terminal.
    pub progress: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            customers: DEFAULT_CUSTOMERS,
            seed: DEFAULT_SEED,
            batch_size: 25,
            progress: false,
        }
    }
}

/// What a run wrote.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    /// Records written, by entity.
    pub created: BTreeMap<String, usize>,
    /// Customers of the plan found already written (and skipped with their records).
    pub existing_customers: usize,
    pub elapsed: Duration,
}

impl DemoReport {
    /// Records written, all entities together.
    pub fn total(&self) -> usize {
        self.created.values().sum()
    }

    /// Records written of one entity.
    pub fn count(&self, entity: &str) -> usize {
        self.created.get(entity).copied().unwrap_or(0)
    }
}

/// The entities the generator writes; the tenant's package must have them (crm-base).
const ENTITIES: [&str; 10] = [
    "customer",
    "contact",
    "lead",
    "opportunity",
    "quote",
    "quote_line",
    "sales_order",
    "order_line",
    "payment",
    "activity",
];

/// Whether the tenant's published package has what the generator writes (crm-base's
/// entities).
pub async fn applies_to(tenant: &Tenant) -> bool {
    let catalog = tenant.catalog().await;
    ENTITIES.iter().all(|key| catalog.entity(key).is_some())
}

/// Generates (or completes) the demo data of a tenant that has crm-base published and
/// its samples loaded.
pub async fn generate(tenant: &Tenant, options: &DemoOptions) -> Result<DemoReport> {
    let started = Instant::now();
    let catalog: Arc<Catalog> = tenant.catalog().await.clone();
    let mut stores = BTreeMap::new();
    for key in ENTITIES {
        let entity = catalog.entity(key).ok_or_else(|| {
            Error::BadRequest(format!(
                "demo data needs the crm-base template: the tenant has no entity {key:?}"
            ))
        })?;
        stores.insert(key, Records::new(&tenant.db, &catalog, entity));
    }
    let customer_table = catalog
        .entity("customer")
        .map(|e| e.table.clone())
        .unwrap_or_default();
    let context = Context::load(tenant, &catalog).await?;
    let mut plan = Generator::new(options.seed, &context);
    let mut report = DemoReport::default();
    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(options.customers as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "demo data {bar:30} {pos}/{len} customers ({per_sec}, {eta} left) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let batch_size = options.batch_size.clamp(1, 500);
    let mut done = 0;
    while done < options.customers {
        let count = batch_size.min(options.customers - done);
        let batch: Vec<CustomerPlan> = (0..count).map(|_| plan.customer()).collect();
        done += count;
        let existing = existing_names(tenant, &customer_table, &batch).await?;
        report.existing_customers += existing.len();
        if existing.len() < batch.len() {
            let txn = tenant.db.begin_write().await?;
            for customer in batch.iter().filter(|c| !existing.contains(&c.name)) {
                let mut ids: Vec<i64> = Vec::with_capacity(customer.records.len());
                for planned in &customer.records {
                    let mut input = planned.fields.clone();
                    for (field, index) in &planned.refs {
                        input.insert((*field).to_string(), Value::from(ids[*index]));
                    }
                    input.insert("owner".into(), Value::from(planned.owner));
                    let store = &stores[planned.entity];
                    let access = Access::full(planned.owner);
                    let refused = |e: Error| {
                        Error::Internal(format!(
                            "demo data: {} of customer {:?} was refused: {e} {}",
                            planned.entity,
                            customer.name,
                            e.details().map(|d| d.to_string()).unwrap_or_default()
                        ))
                    };
                    let prepared = store
                        .prepare_create(&Value::Object(input), &access)
                        .map_err(refused)?;
                    let created = store
                        .insert_prepared(&txn, prepared, &access, "create")
                        .await
                        .map_err(refused)?;
                    ids.push(created["id"].as_i64().unwrap_or_default());
                    *report
                        .created
                        .entry(planned.entity.to_string())
                        .or_insert(0) += 1;
                }
            }
            txn.commit().await?;
        }
        bar.inc(count as u64);
        bar.set_message(format!("{} records", report.total()));
    }
    bar.finish_and_clear();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Which customers of a batch were written already, by their unique name — those in
/// the recycle bin too: a demo customer someone deleted stays deleted.
async fn existing_names(
    tenant: &Tenant,
    table: &str,
    batch: &[CustomerPlan],
) -> Result<HashSet<String>> {
    use sea_orm::sea_query::ExprTrait;

    let names: Vec<String> = batch.iter().map(|c| c.name.clone()).collect();
    let mut select = Query::select();
    select
        .column(Alias::new("name"))
        .from(tenant.db.table(table))
        .and_where(Expr::col(Alias::new("name")).is_in(names));
    let rows = tenant.db.conn().query_all(&select).await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String>("", "name")?))
        .collect()
}

/// What the plan draws on from the tenant: people and products.
struct Context {
    /// Owners of customers and of everything sales does for them.
    reps: Vec<i64>,
    /// Who logs after-sales service calls, if anyone has the `service` role.
    service: Option<i64>,
    products: Vec<Product>,
    today: NaiveDate,
}

struct Product {
    id: i64,
    name: String,
    unit: String,
    price_cents: i64,
}

impl Context {
    async fn load(tenant: &Tenant, catalog: &Catalog) -> Result<Context> {
        let people: Vec<users::User> = users::list(&tenant.db)
            .await?
            .into_iter()
            .filter(|u| u.active)
            .collect();
        let admin = people
            .iter()
            .find(|u| u.is_admin)
            .or(people.first())
            .map(|u| u.id)
            .ok_or_else(|| Error::BadRequest("demo data needs at least one user".into()))?;
        let with_role = |role: &str| -> Vec<i64> {
            people
                .iter()
                .filter(|u| u.roles.iter().any(|r| r == role))
                .map(|u| u.id)
                .collect()
        };
        let mut reps = with_role("sales");
        if reps.is_empty() {
            reps = with_role("sales_manager");
        }
        if reps.is_empty() {
            reps = vec![admin];
        }
        let service = with_role("service").first().copied();
        let products = match catalog.entity("product") {
            Some(entity) => {
                let store = Records::new(&tenant.db, catalog, entity);
                let request = QueryRequest {
                    filter: Some(json!({"field": "active", "op": "ne", "value": false})),
                    sort: Vec::new(),
                    limit: Some(1000),
                    after: None,
                };
                store
                    .query(&request, &Access::full(admin))
                    .await?
                    .items
                    .iter()
                    .filter_map(|p| {
                        Some(Product {
                            id: p["id"].as_i64()?,
                            name: p["name"].as_str()?.to_string(),
                            unit: p["unit"].as_str().unwrap_or_default().to_string(),
                            price_cents: cents(&p["list_price"])?,
                        })
                    })
                    .filter(|p| p.price_cents > 0)
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(Context {
            reps,
            service,
            products,
            today: crate::clock::today(),
        })
    }
}

/// A decimal as API JSON (a number) in cents.
fn cents(value: &Value) -> Option<i64> {
    let number = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let decimal: rust_decimal::Decimal = number.parse().ok()?;
    (decimal * rust_decimal::Decimal::from(100))
        .round()
        .to_string()
        .parse()
        .ok()
}

/// A customer and everything that belongs to it, in writing order.
struct CustomerPlan {
    name: String,
    records: Vec<Planned>,
}

/// One record to create; `refs` are (field, index of an earlier record of the same
/// customer plan) resolved to ids when written.
struct Planned {
    entity: &'static str,
    owner: i64,
    fields: Map<String, Value>,
    refs: Vec<(&'static str, usize)>,
}

impl CustomerPlan {
    fn push(
        &mut self,
        entity: &'static str,
        owner: i64,
        fields: Value,
        refs: Vec<(&'static str, usize)>,
    ) -> usize {
        let Value::Object(mut fields) = fields else {
            unreachable!("planned records are objects")
        };
        fields.retain(|_, v| !v.is_null());
        self.records.push(Planned {
            entity,
            owner,
            fields,
            refs,
        });
        self.records.len() - 1
    }
}

// ---- the word lists ----

struct City {
    name: &'static str,
    region: &'static str,
    /// Telephone area code.
    area: &'static str,
    /// Administrative division code (the 3rd–8th characters of a tax number).
    division: &'static str,
    districts: &'static [&'static str],
    /// Whether companies there usually register as "深圳市…" rather than "广州…".
    city_suffix: bool,
}

const fn city(
    name: &'static str,
    region: &'static str,
    area: &'static str,
    division: &'static str,
    districts: &'static [&'static str],
    city_suffix: bool,
) -> City {
    City {
        name,
        region,
        area,
        division,
        districts,
        city_suffix,
    }
}

/// Cities by region (crm-base's `region` options), with their area and division codes.
#[rustfmt::skip]
const CITIES: &[City] = &[
    city("深圳", "south", "0755", "440300", &["南山区", "福田区", "宝安区", "龙岗区", "龙华区"], true),
    city("广州", "south", "020", "440100", &["天河区", "海珠区", "白云区", "番禺区", "黄埔区"], false),
    city("东莞", "south", "0769", "441900", &["长安镇", "松山湖", "虎门镇", "南城街道", "塘厦镇"], true),
    city("佛山", "south", "0757", "440600", &["顺德区", "南海区", "禅城区"], false),
    city("珠海", "south", "0756", "440400", &["香洲区", "金湾区"], true),
    city("中山", "south", "0760", "442000", &["火炬开发区", "小榄镇", "石岐街道"], false),
    city("南宁", "south", "0771", "450100", &["青秀区", "西乡塘区"], false),
    city("海口", "south", "0898", "460100", &["龙华区", "美兰区"], false),
    city("上海", "east", "021", "310000", &["浦东新区", "闵行区", "徐汇区", "嘉定区", "松江区"], false),
    city("杭州", "east", "0571", "330100", &["西湖区", "滨江区", "余杭区", "萧山区"], false),
    city("宁波", "east", "0574", "330200", &["鄞州区", "北仑区", "余姚市"], false),
    city("苏州", "east", "0512", "320500", &["工业园区", "吴中区", "相城区", "高新区"], false),
    city("南京", "east", "025", "320100", &["江宁区", "鼓楼区", "建邺区", "玄武区"], false),
    city("无锡", "east", "0510", "320200", &["新吴区", "滨湖区", "梁溪区"], false),
    city("常州", "east", "0519", "320400", &["武进区", "新北区"], false),
    city("温州", "east", "0577", "330300", &["鹿城区", "瓯海区", "乐清市"], false),
    city("合肥", "east", "0551", "340100", &["蜀山区", "包河区", "高新区"], false),
    city("济南", "east", "0531", "370100", &["历下区", "高新区", "槐荫区"], false),
    city("青岛", "east", "0532", "370200", &["市南区", "黄岛区", "崂山区"], false),
    city("厦门", "east", "0592", "350200", &["思明区", "湖里区", "集美区"], true),
    city("福州", "east", "0591", "350100", &["鼓楼区", "仓山区", "马尾区"], false),
    city("北京", "north", "010", "110000", &["海淀区", "朝阳区", "丰台区", "大兴区", "昌平区"], false),
    city("天津", "north", "022", "120000", &["滨海新区", "南开区", "西青区", "东丽区"], false),
    city("石家庄", "north", "0311", "130100", &["长安区", "裕华区", "高新区"], false),
    city("太原", "north", "0351", "140100", &["小店区", "迎泽区"], false),
    city("唐山", "north", "0315", "130200", &["路北区", "丰润区"], false),
    city("呼和浩特", "north", "0471", "150100", &["赛罕区", "新城区"], false),
    city("武汉", "central", "027", "420100", &["洪山区", "江汉区", "东湖高新区", "汉阳区"], false),
    city("长沙", "central", "0731", "430100", &["岳麓区", "雨花区", "开福区"], false),
    city("郑州", "central", "0371", "410100", &["金水区", "郑东新区", "二七区"], false),
    city("南昌", "central", "0791", "360100", &["红谷滩区", "青山湖区"], false),
    city("洛阳", "central", "0379", "410300", &["洛龙区", "涧西区"], false),
    city("宜昌", "central", "0717", "420500", &["西陵区", "伍家岗区"], false),
    city("成都", "southwest", "028", "510100", &["高新区", "武侯区", "锦江区", "双流区"], false),
    city("重庆", "southwest", "023", "500000", &["渝北区", "江北区", "九龙坡区", "沙坪坝区"], false),
    city("昆明", "southwest", "0871", "530100", &["五华区", "官渡区", "呈贡区"], false),
    city("贵阳", "southwest", "0851", "520100", &["观山湖区", "南明区"], false),
    city("绵阳", "southwest", "0816", "510700", &["涪城区", "游仙区"], false),
    city("西安", "northwest", "029", "610100", &["雁塔区", "高新区", "未央区", "长安区"], false),
    city("兰州", "northwest", "0931", "620100", &["城关区", "七里河区"], false),
    city("银川", "northwest", "0951", "640100", &["金凤区", "兴庆区"], false),
    city("乌鲁木齐", "northwest", "0991", "650100", &["天山区", "新市区"], false),
    city("沈阳", "northeast", "024", "210100", &["浑南区", "和平区", "铁西区"], false),
    city("大连", "northeast", "0411", "210200", &["甘井子区", "高新园区", "沙河口区"], false),
    city("长春", "northeast", "0431", "220100", &["朝阳区", "南关区", "净月区"], false),
    city("哈尔滨", "northeast", "0451", "230100", &["南岗区", "道里区", "松北区"], false),
];

/// How often customers come from each city (same order as `CITIES`): mostly the
/// south and east, where the sample company sells.
#[rustfmt::skip]
const CITY_WEIGHTS: &[u32] = &[
    9, 8, 6, 4, 2, 2, 1, 1,
    9, 7, 4, 5, 4, 3, 2, 2, 2, 2, 2, 2, 2,
    8, 4, 2, 1, 1, 1,
    4, 3, 3, 2, 1, 1,
    4, 3, 2, 1, 1,
    3, 1, 1, 1,
    2, 2, 1, 2,
];

#[rustfmt::skip]
const ROADS: &[&str] = &[
    "人民路", "建设路", "解放路", "中山路", "科技路", "工业大道", "创新大道", "长江路", "黄河路",
    "新华路", "文化路", "迎宾大道", "高新大道", "学府路", "滨江路", "东风路", "和平路", "光明路",
    "振兴路", "发展大道", "金融街", "商务大道", "产业园路", "海港路",
];

#[rustfmt::skip]
const BUILDINGS: &[&str] = &[
    "科技大厦", "国际商务中心", "创业园", "软件园", "产业园", "商务大厦", "金融中心", "工业园",
];

/// First and second characters of trade names (字号).
#[rustfmt::skip]
const TRADE_FIRST: &[&str] = &[
    "华", "鼎", "鸿", "博", "瑞", "恒", "泰", "盛", "金", "东", "天", "中", "宏", "嘉", "永",
    "兴", "信", "立", "新", "安", "德", "联", "远", "达", "正", "汇", "创", "启", "晨", "明",
    "佳", "锦", "海", "宇", "丰", "和", "荣", "尚", "卓", "睿",
];
#[rustfmt::skip]
const TRADE_SECOND: &[&str] = &[
    "瑞", "达", "泰", "盛", "通", "源", "信", "宇", "诚", "辉", "邦", "润", "成", "航", "智",
    "远", "科", "德", "隆", "昌", "祥", "晟", "恒", "丰", "华", "益", "康", "捷", "腾", "威",
];
/// A third character when two-character names run out.
const TRADE_THIRD: &[&str] = &["达", "通", "兴", "泰", "源", "星", "澜", "川", "峰", "禾"];
/// Trade names of the template's sample customers, never generated.
#[rustfmt::skip]
const SAMPLE_TRADES: &[&str] = &[
    "震华", "明德", "恒达", "浦江", "云栖", "中科", "恒信", "港通", "光谷", "天府", "渝新", "秦川",
    "北方", "湘江", "海天",
];

struct Industry {
    key: &'static str,
    weight: u32,
    /// The business words of a name (`鼎瑞` + `精密机械` + `有限公司`).
    words: &'static [&'static str],
    /// For web and e-mail domains.
    domain_word: &'static str,
    projects: &'static [&'static str],
}

/// crm-base's `industry` options (but government), with the words of their names and
/// the projects they buy.
#[rustfmt::skip]
const INDUSTRIES: &[Industry] = &[
    Industry {
        key: "it", weight: 15, domain_word: "tech",
        words: &["信息技术", "软件", "网络科技", "数据科技", "智能科技", "云计算科技", "电子商务", "系统集成"],
        projects: &["CRM 系统", "项目管理系统", "财务软件升级", "服务器扩容", "数据平台建设"],
    },
    Industry {
        key: "manufacturing", weight: 25, domain_word: "",
        words: &["精密机械", "机电设备", "模具", "五金制品", "电子", "新材料", "自动化设备", "包装材料",
                 "塑胶制品", "汽车零部件"],
        projects: &["ERP 与财务一体化", "进销存系统", "仓库管理系统", "生产管理 MES", "销售管理系统"],
    },
    Industry {
        key: "retail", weight: 15, domain_word: "trade",
        words: &["商贸", "贸易", "百货", "供应链管理", "食品贸易", "电器销售"],
        projects: &["门店进销存", "会员管理系统", "云进销存标准版", "多仓库管理", "收银与库存一体化"],
    },
    Industry {
        key: "finance", weight: 4, domain_word: "capital",
        words: &["投资咨询", "融资租赁", "保险代理", "资产管理"],
        projects: &["客户管理系统", "合同管理系统", "财务软件替换"],
    },
    Industry {
        key: "education", weight: 6, domain_word: "edu",
        words: &["教育科技", "职业培训", "文化教育"],
        projects: &["招生 CRM", "学员管理系统", "财务软件"],
    },
    Industry {
        key: "healthcare", weight: 8, domain_word: "med",
        words: &["医疗器械", "生物医药", "医药", "健康管理", "医疗科技"],
        projects: &["GSP 进销存", "经销商管理", "CRM 系统", "批次追溯系统"],
    },
    Industry {
        key: "construction", weight: 8, domain_word: "build",
        words: &["建设工程", "建筑装饰", "房地产开发", "工程设计", "建材"],
        projects: &["项目成本管理", "材料进销存", "合同与回款管理"],
    },
    Industry {
        key: "logistics", weight: 8, domain_word: "logistics",
        words: &["物流", "国际货运代理", "运输", "仓储服务", "冷链物流"],
        projects: &["财务软件替换", "运输管理系统", "仓储管理系统", "客户结算系统"],
    },
    Industry {
        key: "energy", weight: 6, domain_word: "energy",
        words: &["新能源", "能源科技", "化工", "光伏科技", "环保科技"],
        projects: &["设备台账与巡检", "销售管理系统", "ERP 升级"],
    },
    Industry {
        key: "other", weight: 5, domain_word: "group",
        words: &["文化传媒", "餐饮管理", "酒店管理", "物业管理", "广告", "人力资源服务"],
        projects: &["会员管理系统", "财务软件", "OA 与移动审批"],
    },
];

const COMPANY_FORMS: &[(&str, u32)] = &[("有限公司", 84), ("股份有限公司", 9), ("集团有限公司", 7)];

#[rustfmt::skip]
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "田", "董", "潘", "袁", "蔡", "蒋", "余", "于", "杜", "叶", "程", "魏", "苏", "吕", "丁", "任",
    "沈", "姚", "卢", "钟", "汪", "方", "欧阳",
];
#[rustfmt::skip]
const MALE_NAMES: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林", "洋", "建国", "志强",
    "海涛", "建华", "晓东", "文博", "宏伟", "振华", "国强", "子豪", "俊杰", "明轩", "伟东", "建军",
];
#[rustfmt::skip]
const FEMALE_NAMES: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "婷", "雪", "慧", "玲", "燕", "琳", "颖", "倩",
    "洁", "晶", "欣", "怡", "萍", "红", "梅", "秀英", "晓燕", "雅琴", "丽华", "佳怡", "思雨", "梦洁",
    "欣怡", "雨涵", "淑华", "春梅", "晓丽",
];

/// (department, job title, decision role) of contacts.
#[rustfmt::skip]
const POSITIONS: &[(&str, &str, &str)] = &[
    ("总经办", "总经理", "decision_maker"), ("总经办", "副总经理", "decision_maker"),
    ("财务部", "财务总监", "decision_maker"), ("财务部", "财务经理", "influencer"),
    ("采购部", "采购经理", "influencer"), ("采购部", "采购专员", "gatekeeper"),
    ("信息部", "IT 主管", "influencer"), ("信息部", "信息化经理", "influencer"),
    ("销售部", "销售总监", "user"), ("仓储部", "仓库主管", "user"),
    ("行政部", "行政经理", "gatekeeper"), ("生产部", "生产经理", "user"),
];

#[rustfmt::skip]
const BANKS: &[&str] = &[
    "招商银行", "中国工商银行", "中国建设银行", "中国银行", "中国农业银行", "交通银行", "兴业银行",
    "浦发银行", "中信银行", "平安银行",
];

/// Sources of customers, opportunities and leads (no `campaign`: that needs a campaign).
#[rustfmt::skip]
const SOURCES: &[(&str, u32)] = &[
    ("website", 22), ("exhibition", 14), ("referral", 20), ("telemarketing", 18),
    ("advertising", 8), ("partner", 12), ("other", 6),
];

#[rustfmt::skip]
const OPPORTUNITY_STAGES: &[(&str, u32)] = &[
    ("initial", 22), ("followup", 22), ("quote", 18), ("negotiation", 13), ("won", 15), ("lost", 10),
];

#[rustfmt::skip]
const COMPETITORS: &[&str] = &[
    "用友畅捷通", "金蝶精斗云", "管家婆", "纷享销客", "销售易", "本地软件公司", "客户自研",
];
#[rustfmt::skip]
const NEXT_STEPS: &[&str] = &[
    "安排产品演示", "提交正式报价", "约见财务总监确认预算", "准备合同草稿", "邀请参观样板客户",
    "安排技术交流", "确认实施排期",
];
#[rustfmt::skip]
const TOPICS: &[&str] = &[
    "需求", "采购计划", "预算安排", "上线进度", "报价细节", "付款安排", "合同条款", "实施计划",
    "续约意向", "使用情况",
];
const RESULTS: &[&str] = &[
    "客户认可方案，要求补充报价明细。",
    "对方负责人出差，约下周再联系。",
    "已发送资料，客户内部评估中。",
    "客户预算在审批，预计下月确定。",
    "客户对价格有顾虑，需要申请折扣。",
    "确认了需求清单，准备演示环境。",
    "客户满意，表示会推荐给合作伙伴。",
    "客户暂无新需求，保持季度联系。",
    "已约定下次拜访时间。",
    "客户希望先试用一个月再决定。",
];
const SERVICE_RESULTS: &[&str] = &[
    "问题已远程解决，客户确认。",
    "系统运行稳定，客户满意。",
    "客户提出两个报表需求，已转实施顾问。",
    "已上门培训新员工 3 人。",
];
#[rustfmt::skip]
const LEAD_NEEDS: &[&str] = &[
    "进销存咨询", "CRM 试用申请", "财务软件询价", "ERP 方案咨询", "服务器采购询价", "移动审批咨询",
];
const DELIVERY_TERMS: &[&str] = &[
    "合同签订后 10 个工作日内开通账号并进场实施",
    "合同签订后 5 个工作日内发货",
    "预付款到账后安排实施",
];

/// The plan: a stream of customers drawn from a seeded generator.
struct Generator<'a> {
    rng: StdRng,
    context: &'a Context,
    /// Trade name + industry of every company named so far: no two customers look
    /// like duplicates of each other (查重 strips the city and the company form).
    cores: HashSet<String>,
    names: HashSet<String>,
    tax_numbers: HashSet<String>,
    /// Contract numbers drawn so far.
    contracts: usize,
}

/// A generated company.
struct Company {
    name: String,
    short_name: String,
    industry: &'static Industry,
    /// The e-mail and web domain.
    domain: String,
}

impl<'a> Generator<'a> {
    fn new(seed: u64, context: &'a Context) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            context,
            cores: SAMPLE_TRADES
                .iter()
                .flat_map(|t| INDUSTRIES.iter().map(move |i| format!("{t}|{}", i.key)))
                .collect(),
            names: HashSet::new(),
            tax_numbers: HashSet::new(),
            contracts: 0,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).expect("non-empty list")
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut draw = self.rng.random_range(0..total);
        for (item, weight) in items {
            if draw < *weight {
                return *item;
            }
            draw -= weight;
        }
        items[items.len() - 1].0
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        self.rng.random_range(low..=high)
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect()
    }

    fn day(&self, offset: i64) -> String {
        (self.context.today + TimeDelta::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    }

    fn city(&mut self) -> &'static City {
        let mut draw = self.rng.random_range(0..CITY_WEIGHTS.iter().sum::<u32>());
        for (city, weight) in CITIES.iter().zip(CITY_WEIGHTS) {
            if draw < *weight {
                return city;
            }
            draw -= weight;
        }
        &CITIES[0]
    }

    fn industry(&mut self) -> &'static Industry {
        let total: u32 = INDUSTRIES.iter().map(|i| i.weight).sum();
        let mut draw = self.rng.random_range(0..total);
        for industry in INDUSTRIES {
            if draw < industry.weight {
                return industry;
            }
            draw -= industry.weight;
        }
        &INDUSTRIES[0]
    }

    /// A company name unique among everything generated: city + 字号 + business + form.
    fn company(&mut self, city: &City) -> Company {
        for attempt in 0.. {
            let first = self.pick(TRADE_FIRST);
            let second = self.pick(TRADE_SECOND);
            if first == second {
                continue;
            }
            let mut trade = format!("{first}{second}");
            if attempt > 40 {
                trade.push_str(self.pick(TRADE_THIRD));
            }
            let industry = self.industry();
            let word = self.pick(industry.words);
            let form = self.weighted(COMPANY_FORMS);
            let core = format!("{trade}|{}", industry.key);
            let prefix = if city.city_suffix || self.chance(0.3) {
                format!("{}市", city.name)
            } else {
                city.name.to_string()
            };
            let name = format!("{prefix}{trade}{word}{form}");
            if self.cores.contains(&core) || self.names.contains(&name) {
                continue;
            }
            self.cores.insert(core);
            self.names.insert(name.clone());
            let short_word: String = word.chars().take(2).collect();
            let tld = self.pick(&["com", "cn", "com.cn"]);
            let domain = match industry.domain_word {
                "" => format!("{}.{tld}", pinyin(&trade)),
                word => format!("{}-{word}.{tld}", pinyin(&trade)),
            };
            return Company {
                name,
                short_name: format!("{trade}{short_word}"),
                industry,
                domain,
            };
        }
        unreachable!("the loop returns")
    }

    /// A unified social credit code: 91 + division + 10 letters and digits, unique.
    fn tax_number(&mut self, city: &City) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        loop {
            let tail: String = (0..10)
                .map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())]))
                .collect();
            let code = format!("91{}{tail}", city.division);
            if self.tax_numbers.insert(code.clone()) {
                return code;
            }
        }
    }

    fn landline(&mut self, city: &City) -> String {
        let first = self.rng.random_range(2..9u8);
        format!("{}-{first}{}", city.area, self.digits(7))
    }

    /// A mobile number: 1[3-9]x followed by 8 digits.
    fn mobile(&mut self) -> String {
        let second = self.rng.random_range(3..=9u8);
        format!("1{second}{}", self.digits(9))
    }

    fn address(&mut self, city: &City) -> String {
        let district = self.pick(city.districts);
        let road = self.pick(ROADS);
        let number = self.between(1, 999);
        let city_name = format!("{}市", city.name);
        if self.chance(0.5) {
            let building = self.pick(BUILDINGS);
            let floor = self.between(2, 28);
            format!("{city_name}{district}{road} {number} 号{building} {floor} 楼")
        } else {
            format!("{city_name}{district}{road} {number} 号")
        }
    }

    /// (name, gender, pinyin for e-mail).
    fn person(&mut self) -> (String, &'static str, String) {
        let surname = self.pick(SURNAMES);
        let (given, gender) = if self.chance(0.55) {
            (self.pick(MALE_NAMES), "male")
        } else {
            (self.pick(FEMALE_NAMES), "female")
        };
        let mail = format!("{}{}", pinyin(surname), pinyin(given));
        (format!("{surname}{given}"), gender, mail)
    }

    fn rep(&mut self) -> i64 {
        let context = self.context;
        context.reps[self.rng.random_range(0..context.reps.len())]
    }

    /// The next customer of the plan and everything that belongs to it.
    fn customer(&mut self) -> CustomerPlan {
        let city = self.city();
        let company = self.company(city);
        let owner = self.rep();
        let mut plan = CustomerPlan {
            name: company.name.clone(),
            records: Vec::new(),
        };
        let employees = self.weighted(&[
            ((10, 49), 35),
            ((50, 199), 40),
            ((200, 999), 20),
            ((1000, 5000), 5),
        ]);
        let employees = self.between(employees.0, employees.1);
        let revenue = employees * self.between(15, 90) * 100;
        let category = self.weighted(&[("intent", 20), ("nurture", 35), ("potential", 45)]);
        let value_class = self.weighted(&[("A", 12), ("B", 33), ("C", 55)]);
        let credit_rating =
            self.weighted(&[("excellent", 20), ("good", 45), ("fair", 28), ("poor", 7)]);
        let credit_limit = match value_class {
            "A" => Some(self.between(20, 100) * 1_000_000),
            "B" => Some(self.between(5, 20) * 1_000_000),
            _ => None,
        };
        let bank = if self.chance(0.45) {
            let bank = self.pick(BANKS);
            let district = self.pick(city.districts);
            let account = format!("{}{}", self.between(1, 9), self.digits(15));
            Some((format!("{bank}{}{district}支行", city.name), account))
        } else {
            None
        };
        let followup = match category {
            "intent" => self.between(1, 5),
            "nurture" => self.between(1, 10),
            _ => self.between(3, 30),
        };
        let has_email = self.chance(0.6);
        let has_website = self.chance(0.5);
        let source = self.weighted(SOURCES);
        let phone = self.landline(city);
        let address = self.address(city);
        let tax_no = self.tax_number(city);
        let customer = plan.push(
            "customer",
            owner,
            json!({
                "name": company.name,
                "short_name": company.short_name,
                "phone": phone,
                "email": has_email.then(|| format!("info@{}", company.domain)),
                "website": has_website.then(|| format!("https://www.{}", company.domain)),
                "region": city.region,
                "city": city.name,
                "address": address,
                "industry": company.industry.key,
                "source": source,
                "employees": employees,
                "annual_revenue": money(revenue),
                "category": category,
                "value_class": value_class,
                "credit_rating": credit_rating,
                "credit_limit": credit_limit.map(money),
                "tax_no": tax_no,
                "bank_name": bank.as_ref().map(|b| b.0.clone()),
                "bank_account": bank.as_ref().map(|b| b.1.clone()),
                "next_followup_date": self.day(followup),
            }),
            Vec::new(),
        );

        // Contacts: the first is the primary one.
        let contact_count = self.weighted(&[(1, 35), (2, 45), (3, 20)]);
        let mut contacts = Vec::new();
        for index in 0..contact_count {
            let (name, gender, mail) = self.person();
            let (dept, title, role) = self.pick(POSITIONS);
            let mobile = self.mobile();
            let office = self.chance(0.5).then(|| {
                let extension = self.between(801, 899);
                format!("{}转{extension}", phone)
            });
            let email = self
                .chance(0.5)
                .then(|| format!("{mail}@{}", company.domain));
            let wechat = self.chance(0.4).then(|| mobile.clone());
            let birthday = self.chance(0.2).then(|| {
                let year = self.between(1965, 1995);
                let month = self.between(1, 12);
                let day = self.between(1, 28);
                format!("{year}-{month:02}-{day:02}")
            });
            contacts.push(plan.push(
                "contact",
                owner,
                json!({
                    "name": name, "gender": gender, "dept": dept, "job_title": title,
                    "mobile": mobile, "office_phone": office, "email": email, "wechat": wechat,
                    "decision_role": role, "is_primary": index == 0, "birthday": birthday,
                }),
                vec![("customer", customer)],
            ));
        }

        // A lead: sometimes the one this customer came from, sometimes a new one.
        if self.chance(0.4) {
            self.lead(&mut plan, &company, city, source, owner, customer);
        }

        // Opportunities, and what follows them.
        let opportunity_count = self.weighted(&[(0, 30), (1, 45), (2, 20), (3, 5)]);
        let mut opportunities = Vec::new();
        for _ in 0..opportunity_count {
            let contact = contacts[self.rng.random_range(0..contacts.len())];
            opportunities
                .push(self.opportunity(&mut plan, &company, &address, owner, customer, contact));
        }

        // Follow-ups over the last year.
        let activity_count = self.weighted(&[(1, 14), (2, 22), (3, 26), (4, 20), (5, 12), (6, 6)]);
        for _ in 0..activity_count {
            let contact = contacts[self.rng.random_range(0..contacts.len())];
            let opportunity = match opportunities.len() {
                0 => None,
                n => {
                    let index = self.rng.random_range(0..n);
                    self.chance(0.5).then(|| opportunities[index])
                }
            };
            self.activity(&mut plan, &company, owner, customer, contact, opportunity);
        }
        plan
    }

    fn lead(
        &mut self,
        plan: &mut CustomerPlan,
        company: &Company,
        city: &City,
        source: &str,
        owner: i64,
        customer: usize,
    ) {
        let status = self.weighted(&[
            ("new", 28),
            ("contacting", 28),
            ("qualified", 14),
            ("converted", 20),
            ("invalid", 10),
        ]);
        let (contact_name, gender, mail) = self.person();
        let title = self.pick(POSITIONS).1;
        let need = self.pick(LEAD_NEEDS);
        let phone = self.mobile();
        let has_phone = self.chance(0.85);
        let requirement = format!("{need}，{}", self.pick(TOPICS));
        let honorific = if gender == "male" { "先生" } else { "女士" };
        let mut refs = Vec::new();
        let (name, company_name, industry, domain, source) = if status == "converted" {
            refs.push(("converted_customer", customer));
            (
                format!("{} {need}", company.short_name),
                Some(company.name.clone()),
                company.industry.key,
                company.domain.clone(),
                source,
            )
        } else if self.chance(0.65) {
            let other = self.company(city);
            (
                format!("{} {need}", other.short_name),
                Some(other.name),
                other.industry.key,
                other.domain,
                self.weighted(SOURCES),
            )
        } else {
            let surname: String = contact_name.chars().take(1).collect();
            let source = self.weighted(SOURCES);
            (
                format!("{surname}{honorific}（{need}）"),
                None,
                self.industry().key,
                "163.com".to_string(),
                source,
            )
        };
        let invalid = (status == "invalid")
            .then(|| self.pick(&["空号", "同行咨询", "个人用户，无采购需求", "重复线索"]));
        let email = (!has_phone || self.chance(0.3)).then(|| format!("{mail}@{domain}"));
        plan.push(
            "lead",
            owner,
            json!({
                "name": name, "company": company_name, "contact_name": contact_name,
                "job_title": title, "phone": has_phone.then_some(phone), "email": email,
                "source": source, "industry": industry, "region": city.region, "status": status,
                "invalid_reason": invalid, "requirement": requirement,
            }),
            refs,
        );
    }

    /// An opportunity at a drawn stage; quoted ones get a quote with lines, won ones an
    /// order with lines and its payments. Answers the opportunity's index.
    fn opportunity(
        &mut self,
        plan: &mut CustomerPlan,
        company: &Company,
        address: &str,
        owner: i64,
        customer: usize,
        contact: usize,
    ) -> usize {
        let stage = self.weighted(OPPORTUNITY_STAGES);
        let project = self.pick(company.industry.projects);
        let name = format!("{} {project}", company.short_name);
        let lines = self.lines();
        let quoted_cents: i64 = lines.iter().map(|l| l.amount_cents()).sum();
        let expected_cents = if quoted_cents > 0 {
            round_to(quoted_cents * self.between(90, 120) / 100, 10_000)
        } else {
            self.between(2, 80) * 1_000_000
        };
        let discount = self.weighted(&[
            (0, 35),
            (3, 15),
            (5, 20),
            (8, 12),
            (10, 10),
            (12, 5),
            (15, 3),
        ]);
        let final_cents = half_away(quoted_cents * (100 - discount), 100);
        let (close_offset, signed_offset) = match stage {
            "won" => {
                let signed = -self.between(0, 330);
                (signed, Some(signed))
            }
            "lost" => (-self.between(0, 200), None),
            "quote" | "negotiation" => (self.between(10, 120), None),
            _ => (self.between(30, 200), None),
        };
        let competitor = self.chance(0.35).then(|| self.pick(COMPETITORS));
        let next_step = self.pick(NEXT_STEPS);
        let lost_reason = self.weighted(&[
            ("price", 30),
            ("competitor", 30),
            ("no_budget", 20),
            ("no_decision", 10),
            ("product_fit", 5),
            ("other", 5),
        ]);
        let source = self.weighted(SOURCES);
        let won = stage == "won";
        let contract_cents = if quoted_cents > 0 {
            final_cents
        } else {
            expected_cents
        };
        let opportunity = plan.push(
            "opportunity",
            owner,
            json!({
                "name": name, "stage": stage, "source": source,
                "expected_amount": money(expected_cents),
                "expected_close_date": self.day(close_offset),
                "competitor": competitor,
                "next_step": (stage != "won" && stage != "lost").then_some(next_step),
                "signed_date": signed_offset.map(|d| self.day(d)),
                "contract_amount": won.then(|| money(contract_cents)),
                "lost_reason": (stage == "lost").then_some(lost_reason),
            }),
            vec![("customer", customer), ("contact", contact)],
        );
        let quoted = matches!(stage, "quote" | "negotiation" | "won")
            || (stage == "lost" && self.chance(0.4));
        if !quoted || lines.is_empty() {
            return opportunity;
        }
        let quote_offset = match signed_offset {
            Some(signed) => signed - self.between(5, 40),
            None if stage == "lost" => close_offset - self.between(10, 60),
            None => -self.between(0, 60),
        };
        let status = match stage {
            "won" => "accepted",
            "lost" => "declined",
            "negotiation" => self.pick(&["sent", "submitted", "approved"]),
            _ => self.pick(&["draft", "sent"]),
        };
        let terms = self.weighted(&[
            ("prepaid", 20),
            ("split_37", 30),
            ("split_532", 25),
            ("net30", 15),
            ("net60", 10),
        ]);
        let delivery = self.pick(DELIVERY_TERMS);
        let quote = plan.push(
            "quote",
            owner,
            json!({
                "title": format!("{name}报价"), "quote_date": self.day(quote_offset),
                "valid_days": 30, "amount": money(quoted_cents), "discount_rate": discount,
                "payment_terms": terms, "delivery_terms": delivery, "status": status,
            }),
            vec![
                ("customer", customer),
                ("contact", contact),
                ("opportunity", opportunity),
            ],
        );
        for line in &lines {
            plan.push("quote_line", owner, line.json(), vec![("quote", quote)]);
        }
        let Some(signed) = signed_offset else {
            return opportunity;
        };

        // The order: its stage, lines, and payments by the payment terms.
        let order_stage = self.weighted(&[
            ("draft", 4),
            ("approving", 8),
            ("approved", 14),
            ("shipped", 26),
            ("completed", 42),
            ("cancelled", 6),
        ]);
        let delivery_offset = signed + self.between(7, 45);
        self.contracts += 1;
        let contract_no = format!("HT-{}-D{:05}", &self.day(signed)[..4], self.contracts);
        let shares: &[(i64, i64)] = match terms {
            "prepaid" => &[(100, 0)],
            "split_37" => &[(30, 0), (70, 45)],
            "split_532" => &[(50, 0), (30, 45), (20, 365)],
            "net30" => &[(100, 30)],
            _ => &[(100, 60)],
        };
        // How many installments have been paid, by the order's progress.
        let paid_installments = match order_stage {
            "completed" => shares.len() - usize::from(shares.len() == 3 && self.chance(0.5)),
            "shipped" => usize::from(self.chance(0.8)) + usize::from(self.chance(0.3)),
            "approved" => usize::from(self.chance(0.5)),
            _ => 0,
        }
        .min(shares.len());
        let mut payments = Vec::new();
        let mut allotted = 0;
        for (index, (share, due_after)) in shares.iter().enumerate() {
            let amount = if index + 1 == shares.len() {
                final_cents - allotted
            } else {
                final_cents * share / 100
            };
            allotted += amount;
            let late = self.between(-5, 15);
            let method = self.weighted(&[
                ("bank", 70),
                ("acceptance", 20),
                ("wechat", 5),
                ("alipay", 5),
            ]);
            payments.push((index + 1, *share, amount, signed + due_after, late, method));
        }
        let received_cents: i64 = payments.iter().take(paid_installments).map(|p| p.2).sum();
        let payment_status = match received_cents {
            0 => "unpaid",
            r if r >= final_cents => "paid",
            _ => "partial",
        };
        let order = plan.push(
            "sales_order",
            owner,
            json!({
                "title": name, "stage": order_stage, "contract_no": contract_no,
                "order_date": self.day(signed), "delivery_date": self.day(delivery_offset),
                "amount": money(final_cents), "received_amount": money(received_cents),
                "payment_status": payment_status, "payment_terms": terms,
                "shipping_address": address,
            }),
            vec![
                ("customer", customer),
                ("contact", contact),
                ("opportunity", opportunity),
                ("quote", quote),
            ],
        );
        for line in &lines {
            plan.push(
                "order_line",
                owner,
                line.json(),
                vec![("sales_order", order)],
            );
        }
        if matches!(order_stage, "draft" | "approving" | "cancelled") {
            return opportunity;
        }
        for (index, (installment, share, amount, due, late, method)) in
            payments.into_iter().enumerate()
        {
            let received = index < paid_installments;
            // Never in the future: a late payment of a recent order came in today.
            let received_offset = (due + late).min(0);
            plan.push(
                "payment",
                owner,
                json!({
                    "title": format!("{} 第 {installment} 期 {share}%", company.short_name),
                    "installment": installment, "due_date": self.day(due),
                    "amount_due": money(amount),
                    "received_date": received.then(|| self.day(received_offset)),
                    "amount_received": received.then(|| money(amount)),
                    "method": received.then_some(method),
                }),
                vec![("customer", customer), ("sales_order", order)],
            );
        }
        opportunity
    }

    /// One to three quote lines at the products' list prices.
    fn lines(&mut self) -> Vec<Line> {
        let context = self.context;
        let products = &context.products;
        if products.is_empty() {
            return Vec::new();
        }
        let count = self
            .weighted(&[(1, 35), (2, 40), (3, 25)])
            .min(products.len());
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < count {
            let index = self.rng.random_range(0..products.len());
            if !chosen.contains(&index) {
                chosen.push(index);
            }
        }
        chosen
            .into_iter()
            .map(|index| {
                let product = &products[index];
                let quantity = match product.unit.as_str() {
                    "manday" => self.between(5, 40),
                    "year" => self.between(1, 3),
                    "set" => self.between(1, 2),
                    _ => self.between(1, 5),
                };
                Line {
                    product: product.id,
                    item: product.name.clone(),
                    quantity,
                    price_cents: product.price_cents,
                }
            })
            .collect()
    }

    fn activity(
        &mut self,
        plan: &mut CustomerPlan,
        company: &Company,
        owner: i64,
        customer: usize,
        contact: usize,
        opportunity: Option<usize>,
    ) {
        let kind = self.weighted(&[
            ("call", 38),
            ("visit", 24),
            ("email", 14),
            ("meeting", 8),
            ("demo", 7),
            ("service", 5),
            ("callback", 4),
        ]);
        let status = self.weighted(&[("done", 90), ("planned", 6), ("cancelled", 4)]);
        let topic = self.pick(TOPICS);
        let short = &company.short_name;
        let subject = match kind {
            "call" => self
                .pick(&["电话跟进{t}", "电话确认{t}", "电话沟通{t}"])
                .replace("{t}", topic),
            "visit" => format!(
                "{}，{}",
                self.pick(&["上门拜访", "现场调研", "拜访客户"]),
                topic
            ),
            "email" => self
                .pick(&["发送{t}资料", "邮件确认{t}"])
                .replace("{t}", topic),
            "meeting" => format!("{short} {topic}沟通会"),
            "demo" => format!("为{short}演示系统功能"),
            "service" => format!("{short} 系统使用问题处理"),
            _ => format!("{short} 满意度回访"),
        };
        let duration = match kind {
            "call" => self.between(5, 30),
            "email" => self.between(10, 30),
            "visit" | "meeting" => self.between(45, 180),
            _ => self.between(30, 120),
        };
        let offset = match status {
            "planned" => self.between(1, 14),
            _ => -self.between(0, 365),
        };
        let result = if matches!(kind, "service" | "callback") {
            self.pick(SERVICE_RESULTS)
        } else {
            self.pick(RESULTS)
        };
        let next = self.chance(0.4);
        let next_after = self.between(3, 30);
        let owner = match (kind, self.context.service) {
            ("service" | "callback", Some(service)) => service,
            _ => owner,
        };
        let mut refs = vec![("customer", customer), ("contact", contact)];
        if let Some(opportunity) = opportunity {
            refs.push(("opportunity", opportunity));
        }
        plan.push(
            "activity",
            owner,
            json!({
                "subject": subject, "kind": kind, "activity_date": self.day(offset),
                "duration_minutes": duration, "status": status,
                "result": (status == "done").then_some(result),
                "next_action": next.then(|| self.pick(NEXT_STEPS)),
                "next_date": next.then(|| self.day(offset + next_after)),
            }),
            refs,
        );
    }
}

struct Line {
    product: i64,
    item: String,
    quantity: i64,
    price_cents: i64,
}

impl Line {
    fn amount_cents(&self) -> i64 {
        self.quantity * self.price_cents
    }

    fn json(&self) -> Value {
        json!({"product": self.product, "item": self.item, "quantity": self.quantity,
               "unit_price": money(self.price_cents)})
    }
}

/// Cents as an exact decimal string.
fn money(cents: i64) -> Value {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.abs();
    Value::String(format!("{sign}{}.{:02}", cents / 100, cents % 100))
}

/// `value / divisor`, rounded half away from zero (as the formulas round).
fn half_away(value: i64, divisor: i64) -> i64 {
    let quotient = value / divisor;
    let remainder = value % divisor;
    if remainder.abs() * 2 >= divisor {
        quotient + value.signum()
    } else {
        quotient
    }
}

/// Rounded to a multiple of `unit`.
fn round_to(value: i64, unit: i64) -> i64 {
    half_away(value, unit).max(1) * unit
}

fn pinyin(text: &str) -> String {
    text.to_pinyin().flatten().map(|p| p.plain()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            reps: vec![2, 3, 4],
            service: Some(5),
            products: vec![
                Product {
                    id: 10,
                    name: "云进销存 专业版（年订阅）".into(),
                    unit: "year".into(),
                    price_cents: 1_280_000,
                },
                Product {
                    id: 11,
                    name: "实施服务".into(),
                    unit: "manday".into(),
                    price_cents: 150_000,
                },
            ],
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        }
    }

    #[test]
    fn the_plan_is_the_same_for_the_same_seed_and_names_are_unique() {
        let context = context();
        let plans = |seed| {
            let mut plan = Generator::new(seed, &context);
            (0..3000).map(|_| plan.customer()).collect::<Vec<_>>()
        };
        let first: Vec<String> = plans(7).into_iter().map(|c| c.name).collect();
        let again: Vec<String> = plans(7).into_iter().map(|c| c.name).collect();
        assert_eq!(first, again);
        let other: Vec<String> = plans(8).into_iter().map(|c| c.name).collect();
        assert_ne!(first, other);
        let unique: HashSet<&String> = first.iter().collect();
        assert_eq!(unique.len(), first.len());
        for customer in plans(7) {
            assert!(customer.name.ends_with("公司"), "{}", customer.name);
            let short = customer.records[0].fields["short_name"].as_str().unwrap();
            assert!(
                !SAMPLE_TRADES.iter().any(|t| short.starts_with(t)),
                "{} looks like a sample customer",
                customer.name
            );
        }
    }

    #[test]
    fn phones_tax_numbers_and_money_have_their_formats() {
        let context = context();
        let mut plan = Generator::new(1, &context);
        let mobile = regex::Regex::new(r"^1[3-9][0-9]{9}$").unwrap();
        let tax = regex::Regex::new(r"^[0-9A-Z]{18}$").unwrap();
        for _ in 0..200 {
            assert!(mobile.is_match(&plan.mobile()));
            assert!(tax.is_match(&plan.tax_number(&CITIES[0])));
        }
        assert_eq!(money(12345), json!("123.45"));
        assert_eq!(money(5), json!("0.05"));
        assert_eq!(half_away(125, 10), 13);
        assert_eq!(half_away(-125, 10), -13);
        assert_eq!(CITY_WEIGHTS.len(), CITIES.len());
    }

    #[test]
    fn related_records_refer_backwards_within_their_customer() {
        let context = context();
        let mut plan = Generator::new(3, &context);
        for _ in 0..300 {
            let customer = plan.customer();
            assert_eq!(customer.records[0].entity, "customer");
            for (index, record) in customer.records.iter().enumerate() {
                for (_, target) in &record.refs {
                    assert!(*target < index);
                }
            }
        }
    }
}
