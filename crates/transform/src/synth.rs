//! Synthetic Azure records: a deterministic generator of realistic Activity Log and Entra ID
//! records, so tests and benchmarks share data that no one has to download.
//!
//! The records follow the shapes in `shared/corpus/FIELDS.md`: JWT claims and role-assignment
//! evidence on Activity records, Graph-like `properties` on Entra records, `Level` as a number or
//! `level` as a string, `durationMs` as a number or a string, times with 0 to 9 fractional digits or
//! in the US form, IPv4, IPv6, `ip:port` and `<null>` caller addresses, mixed-case resource ids, and a
//! few failures. About 2.2 kB per record on average. The same seed always gives the same bytes.

use std::fmt::Write as _;

/// A small, fast, seedable generator (SplitMix64); statistical quality is ample for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A GUID-shaped string.
    pub fn guid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Generates records one after another.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    seq: u64,
    /// The first record's time, in seconds since the epoch.
    start: u64,
    tenant: String,
    subscriptions: Vec<String>,
    users: Vec<User>,
    apps: Vec<(String, String, String)>,
}

#[derive(Debug, Clone)]
struct User {
    oid: String,
    upn: String,
    given: String,
    surname: String,
}

const FIRST: &[&str] = &[
    "Ana", "Björn", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivo", "José", "Kai", "Lena",
];
const LAST: &[&str] = &[
    "Adams", "O'Brien", "Müller", "Nakamura", "Okafor", "Silva", "Tanaka", "Weiß", "Young", "Zhou",
];
const REGIONS: &[&str] = &[
    "eastus",
    "westeurope",
    "northeurope",
    "uksouth",
    "japaneast",
    "global",
];
const APPS: &[&str] = &[
    "Azure Portal",
    "Microsoft Office",
    "Azure CLI",
    "Microsoft Teams",
    "Graph Explorer",
    "Terraform",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "python/3.11.7 (Linux-6.1.0-x86_64-with-glibc2.36) AZURECLI/2.60.0 (DEB)",
    "Terraform/1.8.2 terraform-provider-azurerm/3.101.0",
];

struct Op {
    provider: &'static str,
    resource: &'static str,
    action: &'static str,
}

const ADMIN_OPS: &[Op] = &[
    Op {
        provider: "Microsoft.Storage",
        resource: "storageAccounts",
        action: "listKeys/action",
    },
    Op {
        provider: "Microsoft.Storage",
        resource: "storageAccounts",
        action: "write",
    },
    Op {
        provider: "Microsoft.Storage",
        resource: "storageAccounts/blobServices/containers",
        action: "delete",
    },
    Op {
        provider: "Microsoft.Compute",
        resource: "virtualMachines",
        action: "start/action",
    },
    Op {
        provider: "Microsoft.Compute",
        resource: "virtualMachines",
        action: "write",
    },
    Op {
        provider: "Microsoft.Network",
        resource: "networkSecurityGroups/securityRules",
        action: "write",
    },
    Op {
        provider: "Microsoft.KeyVault",
        resource: "vaults",
        action: "write",
    },
    Op {
        provider: "Microsoft.Authorization",
        resource: "roleAssignments",
        action: "write",
    },
    Op {
        provider: "Microsoft.Resources",
        resource: "deployments",
        action: "write",
    },
    Op {
        provider: "Microsoft.Web",
        resource: "sites",
        action: "restart/action",
    },
];

/// 2026-11-01T00:00:00Z: the default first record's time.
const DEFAULT_START: u64 = 1_793_491_200;

impl Generator {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let tenant = rng.guid();
        let subscriptions = (0..4).map(|_| rng.guid()).collect();
        let users = (0..40)
            .map(|_| {
                let given = rng.pick(FIRST).to_string();
                let surname = rng.pick(LAST).to_string();
                let upn = format!(
                    "{}.{}@contoso.example",
                    ascii_lower(&given),
                    ascii_lower(&surname)
                );
                User {
                    oid: rng.guid(),
                    upn,
                    given,
                    surname,
                }
            })
            .collect();
        let apps = (0..8)
            .map(|i| (rng.guid(), rng.guid(), format!("svc-pipeline-{i}")))
            .collect();
        Self {
            rng,
            seq: 0,
            start: DEFAULT_START,
            tenant,
            subscriptions,
            users,
            apps,
        }
    }

    /// Appends one record (one line, without the line feed) to `out`.
    pub fn record(&mut self, out: &mut String) {
        self.seq += 1;
        match self.rng.below(100) {
            0..=29 => self.administrative(out),
            30..=54 => self.sign_in(out, "SignInLogs"),
            55..=62 => self.sign_in(out, "NonInteractiveUserSignInLogs"),
            63..=67 => self.sign_in(out, "ServicePrincipalSignInLogs"),
            68..=71 => self.sign_in(out, "ManagedIdentitySignInLogs"),
            72..=86 => self.audit(out),
            87..=91 => self.policy(out),
            92..=94 => self.health(out),
            95..=96 => self.provisioning(out),
            _ => self.risk_event(out),
        }
    }

    /// `n` records as JSON Lines, each ending in `\n`.
    pub fn lines(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n * 2300);
        for _ in 0..n {
            self.record(&mut s);
            s.push('\n');
        }
        s
    }

    /// Records from `start` (seconds since the epoch) on, instead of 2026-11-01T00:00:00Z.
    pub fn starting_at(mut self, start: u64) -> Self {
        self.start = start;
        self
    }

    fn time(&mut self) -> String {
        // The start plus about 0.36 s per record.
        let base = self.start + self.seq * 36 / 100;
        let (d, s) = (base / 86_400, base % 86_400);
        let (y, m, day) = crate::time::civil_from_days(d as i64);
        let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
        let frac = self.rng.below(1_000_000_000);
        match self.rng.below(100) {
            0..=69 => format!(
                "{y:04}-{m:02}-{day:02}T{h:02}:{mi:02}:{se:02}.{:07}Z",
                frac / 100
            ),
            70..=79 => format!(
                "{y:04}-{m:02}-{day:02}T{h:02}:{mi:02}:{se:02}.{:03}Z",
                frac / 1_000_000
            ),
            80..=84 => format!("{y:04}-{m:02}-{day:02}T{h:02}:{mi:02}:{se:02}.{frac:09}Z"),
            85..=89 => format!("{y:04}-{m:02}-{day:02}T{h:02}:{mi:02}:{se:02}Z"),
            90..=94 => format!(
                "{y:04}-{m:02}-{day:02} {h:02}:{mi:02}:{se:02}.{:03}",
                frac / 1_000_000
            ),
            _ => {
                let (h12, ampm) = match h {
                    0 => (12, "AM"),
                    1..=11 => (h, "AM"),
                    12 => (12, "PM"),
                    _ => (h - 12, "PM"),
                };
                format!("{m}/{day}/{y} {h12}:{mi:02}:{se:02} {ampm}")
            }
        }
    }

    fn ip(&mut self) -> String {
        match self.rng.below(100) {
            0..=64 => format!(
                "{}.{}.{}.{}",
                1 + self.rng.below(222),
                self.rng.below(256),
                self.rng.below(256),
                1 + self.rng.below(254)
            ),
            65..=84 => format!(
                "2a02:cf40:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536)
            ),
            85..=92 => format!(
                "10.{}.{}.{}:{}",
                self.rng.below(256),
                self.rng.below(256),
                1 + self.rng.below(254),
                1024 + self.rng.below(60000)
            ),
            93..=96 => "<null>".to_string(),
            _ => "0.0.0.0".to_string(),
        }
    }

    fn level(&mut self, out: &mut String, info: bool) {
        match (self.rng.below(3), info) {
            (0, true) => out.push_str("\"Level\":4"),
            (1, true) => out.push_str("\"level\":\"Informational\""),
            (_, true) => out.push_str("\"Level\":\"4\""),
            (_, false) => out.push_str("\"level\":\"Error\""),
        }
    }

    fn duration(&mut self, out: &mut String) {
        let d = self.rng.below(5000);
        if self.rng.chance(10) {
            let _ = write!(out, "\"durationMs\":\"{d}\"");
        } else {
            let _ = write!(out, "\"durationMs\":{d}");
        }
    }

    fn resource_id(&mut self, op: &Op, sub: &str, rg: &str, name: &str) -> String {
        let id = format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/{}/{}/{name}",
            op.provider,
            op.resource.split('/').next().unwrap_or(op.resource)
        );
        if self.rng.chance(20) {
            id.to_ascii_uppercase()
        } else {
            id
        }
    }

    fn administrative(&mut self, out: &mut String) {
        let sub = self.rng.pick(&self.subscriptions).clone();
        let op = self.rng.pick(ADMIN_OPS);
        let rg = format!(
            "rg-{}-{}",
            self.rng.pick(&["prod", "dev", "shared", "data"]),
            self.rng.below(20)
        );
        let name = format!("res{:05}", self.rng.below(100_000));
        let rid = self.resource_id(op, &sub, &rg, &name);
        let failed = self.rng.chance(6);
        let user_call = self.rng.chance(70);
        let user = self.rng.pick(&self.users).clone();
        let app = self.rng.pick(&self.apps).clone();
        let corr = self.rng.guid();
        let time = self.time();
        let ip = self.ip();
        let opname = format!("{}/{}/{}", op.provider, op.resource, op.action);
        let opname = if self.rng.chance(15) {
            opname.to_ascii_uppercase()
        } else {
            opname
        };
        let _ = write!(
            out,
            "{{\"time\":\"{time}\",\"resourceId\":\"{rid}\",\"operationName\":\"{opname}\",\"category\":\"{}\",\"resultType\":\"{}\",\"resultSignature\":\"{}\",",
            if self.rng.chance(5) { "Write" } else { "Administrative" },
            if failed { "Failure" } else { *self.rng.pick(&["Success", "Start", "Accept"]) },
            if failed { "Forbidden" } else { "Succeeded.OK" },
        );
        self.duration(out);
        let _ = write!(out, ",\"callerIpAddress\":\"{ip}\",\"correlationId\":\"{corr}\",\"identity\":{{\"authorization\":{{\"scope\":\"{rid}\",\"action\":\"{}/{}/{}\",\"evidence\":{{\"role\":\"{}\",\"roleAssignmentScope\":\"/subscriptions/{sub}\",\"roleAssignmentId\":\"{}\",\"roleDefinitionId\":\"{}\",\"principalId\":\"{}\",\"principalType\":\"{}\"}}}},\"claims\":{{",
            op.provider, op.resource, op.action,
            self.rng.pick(&["Owner", "Contributor", "Storage Account Contributor", "Subscription Admin"]),
            self.rng.guid().replace('-', ""), self.rng.guid().replace('-', ""),
            if user_call { user.oid.replace('-', "") } else { app.1.replace('-', "") },
            if user_call { "User" } else { "ServicePrincipal" },
        );
        let iat = 1_793_491_200 + self.seq;
        let _ = write!(out, "\"aud\":\"https://management.core.windows.net/\",\"iss\":\"https://sts.windows.net/{t}/\",\"iat\":\"{iat}\",\"nbf\":\"{iat}\",\"exp\":\"{}\",\"aio\":\"{}\",\"appid\":\"{}\",\"appidacr\":\"{}\",\"http://schemas.microsoft.com/identity/claims/identityprovider\":\"https://sts.windows.net/{t}/\",\"http://schemas.microsoft.com/identity/claims/objectidentifier\":\"{}\",\"http://schemas.microsoft.com/identity/claims/tenantid\":\"{t}\",\"uti\":\"{}\",\"ver\":\"1.0\"",
            iat + 3600, b64ish(&mut self.rng, 40),
            if user_call { "c44b4083-3bb0-49c1-b47d-974e53cbdf3c" } else { &app.0 },
            if user_call { "2" } else { "1" },
            if user_call { &user.oid } else { &app.1 },
            b64ish(&mut self.rng, 22),
            t = self.tenant,
        );
        if user_call {
            let _ = write!(out, ",\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn\":\"{upn}\",\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name\":\"{upn}\",\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname\":\"{}\",\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname\":\"{}\",\"name\":\"{} {}\",\"http://schemas.microsoft.com/claims/authnmethodsreferences\":\"pwd,mfa\",\"ipaddr\":\"{}\",\"puid\":\"{:016X}\"",
                json_escape(&user.given), json_escape(&user.surname), json_escape(&user.given), json_escape(&user.surname),
                ip.split(':').next().unwrap_or(""), self.rng.next_u64(), upn = user.upn);
        }
        out.push_str("}},");
        self.level(out, !failed);
        let _ = write!(
            out,
            ",\"location\":\"{}\",\"properties\":{{\"statusCode\":\"{}\",\"serviceRequestId\":{},\"eventCategory\":\"Administrative\",\"entity\":\"{rid}\",\"message\":\"{opname}\",\"hierarchy\":\"{}/{sub}\"",
            self.rng.pick(REGIONS),
            if failed { "Forbidden" } else { "OK" },
            if self.rng.chance(50) { format!("\"{}\"", self.rng.guid()) } else { "null".into() },
            self.tenant
        );
        if failed {
            let _ = write!(out, ",\"statusMessage\":\"{{\\\"error\\\":{{\\\"code\\\":\\\"AuthorizationFailed\\\",\\\"message\\\":\\\"The client '{}' with object id '{}' does not have authorization to perform action '{opname}' over scope '{rid}' or the scope is invalid.\\\"}}}}\"", user.upn, user.oid);
        } else if self.rng.chance(30) {
            let _ = write!(out, ",\"requestbody\":\"{{\\\"location\\\":\\\"{}\\\",\\\"tags\\\":{{\\\"owner\\\":\\\"{}\\\",\\\"costCenter\\\":\\\"{}\\\"}},\\\"properties\\\":{{\\\"minimumTlsVersion\\\":\\\"TLS1_2\\\",\\\"allowBlobPublicAccess\\\":false}}}}\"", self.rng.pick(REGIONS), user.upn, self.rng.below(9999));
        }
        out.push_str("}}");
    }

    fn sign_in(&mut self, out: &mut String, category: &str) {
        let user = self.rng.pick(&self.users).clone();
        let app = self.rng.pick(&self.apps).clone();
        let time = self.time();
        let ip = self.ip();
        let id = self.rng.guid();
        let corr = self.rng.guid();
        let service = category.starts_with("ServicePrincipal") || category.starts_with("Managed");
        let error = if self.rng.chance(8) {
            *self.rng.pick(&[50126u32, 50140, 50074, 53003])
        } else {
            0
        };
        let t = self.tenant.clone();
        let _ = write!(out, "{{\"time\":\"{time}\",\"resourceId\":\"/tenants/{t}/providers/Microsoft.aadiam\",\"operationName\":\"Sign-in activity\",\"operationVersion\":\"1.0\",\"category\":\"{category}\",\"tenantId\":\"{t}\",\"resultType\":\"{error}\",\"resultSignature\":\"None\",");
        if error != 0 {
            out.push_str("\"resultDescription\":\"Invalid username or password or Invalid on-premise username or password.\",");
        }
        self.duration(out);
        let _ = write!(
            out,
            ",\"callerIpAddress\":\"{ip}\",\"correlationId\":\"{corr}\",\"identity\":\"{}\",",
            if service {
                app.2.clone()
            } else {
                format!(
                    "{} {}",
                    json_escape(&user.given),
                    json_escape(&user.surname)
                )
            }
        );
        self.level(out, true);
        let city = self.rng.pick(&[
            ("Seattle", "Washington", "US", 47.6062, -122.3321),
            ("Dublin", "Dublin", "IE", 53.3498, -6.2603),
            ("Tokyo", "Tokyo", "JP", 35.6762, 139.6503),
            ("São Paulo", "São Paulo", "BR", -23.5505, -46.6333),
        ]);
        let _ = write!(
            out,
            ",\"location\":\"{}\",\"properties\":{{\"id\":\"{id}\",\"createdDateTime\":\"{time}\",",
            city.2
        );
        if service {
            let _ = write!(out, "\"userDisplayName\":\"\",\"userPrincipalName\":\"\",\"userId\":null,\"appId\":\"{}\",\"appDisplayName\":\"{}\",\"servicePrincipalId\":\"{}\",\"servicePrincipalName\":\"{}\",\"servicePrincipalCredentialKeyId\":\"{}\",\"clientCredentialType\":\"{}\",\"resourceServicePrincipalId\":\"{}\",",
                app.0, app.2, app.1, app.2, self.rng.guid(), if category.starts_with("Managed") { "managedIdentity" } else { "clientSecret" }, self.rng.guid());
            if category.starts_with("Managed") {
                out.push_str("\"managedIdentityType\":\"SystemAssigned\",");
            }
        } else {
            let _ = write!(out, "\"userDisplayName\":\"{} {}\",\"userPrincipalName\":\"{}\",\"userId\":\"{}\",\"appId\":\"{}\",\"appDisplayName\":\"{}\",\"userAgent\":\"{}\",\"clientAppUsed\":\"Browser\",\"isInteractive\":{},\"userType\":\"Member\",",
                json_escape(&user.given), json_escape(&user.surname), user.upn, user.oid, app.0, self.rng.pick(APPS), self.rng.pick(AGENTS), category == "SignInLogs");
        }
        let _ = write!(out, "\"ipAddress\":\"{}\",\"correlationId\":\"{corr}\",\"conditionalAccessStatus\":\"{}\",\"originalRequestId\":\"{id}\",\"tokenIssuerType\":\"AzureAD\",\"riskDetail\":\"none\",\"riskLevelAggregated\":\"none\",\"riskLevelDuringSignIn\":\"none\",\"riskState\":\"none\",\"riskEventTypes\":[],\"resourceDisplayName\":\"Windows Azure Service Management API\",\"resourceId\":\"797f4846-ba00-4fd7-ba43-dac1f8f63013\",\"resourceTenantId\":\"{t}\",\"homeTenantId\":\"{t}\",\"processingTimeInMilliseconds\":{},\"autonomousSystemNumber\":{},\"uniqueTokenIdentifier\":\"{}\",\"status\":{{\"errorCode\":{error}",
            if service { String::new() } else { ip.clone() },
            if error == 0 { "success" } else { "failure" },
            self.rng.below(400), 8075 + self.rng.below(100), b64ish(&mut self.rng, 22));
        if error != 0 {
            out.push_str(",\"failureReason\":\"Invalid username or password or Invalid on-premise username or password.\"");
        }
        let _ = write!(out, "}},\"deviceDetail\":{{\"deviceId\":\"{}\",\"operatingSystem\":\"{}\",\"browser\":\"{}\"}},\"location\":{{\"city\":\"{}\",\"state\":\"{}\",\"countryOrRegion\":\"{}\",\"geoCoordinates\":{{\"latitude\":{},\"longitude\":{}}}}},",
            if self.rng.chance(50) { self.rng.guid() } else { String::new() },
            self.rng.pick(&["Windows 10", "MacOs", "Linux", "Ios"]), self.rng.pick(&["Edge 124.0.0", "Chrome 124.0.0", "Safari 17.4"]),
            city.0, city.1, city.2, city.3, city.4);
        let _ = write!(out, "\"appliedConditionalAccessPolicies\":[{{\"id\":\"{}\",\"displayName\":\"Require MFA for admins\",\"enforcedGrantControls\":[\"Mfa\"],\"enforcedSessionControls\":[],\"result\":\"{}\"}}",
            self.rng.guid(), if error == 53003 { "failure" } else { "success" });
        if self.rng.chance(25) {
            let _ = write!(out, ",{{\"id\":\"{}\",\"displayName\":\"Block legacy authentication\",\"enforcedGrantControls\":[\"Block\"],\"enforcedSessionControls\":[],\"result\":\"notApplied\"}}", self.rng.guid());
        }
        out.push_str("],");
        let _ = write!(out, "\"authenticationDetails\":[{{\"authenticationStepDateTime\":\"{time}\",\"authenticationMethod\":\"Password\",\"succeeded\":{},\"authenticationStepResultDetail\":\"{}\",\"authenticationStepRequirement\":\"Primary authentication\",\"StatusSequence\":0,\"RequestSequence\":0}}],\"authenticationProcessingDetails\":[{{\"key\":\"Legacy TLS (TLS 1.0, 1.1, 3DES)\",\"value\":\"False\"}}],\"networkLocationDetails\":[],\"crossTenantAccessType\":\"none\"}}}}",
            error == 0, if error == 0 { "Correct password" } else { "Invalid username or password" });
    }

    fn audit(&mut self, out: &mut String) {
        let user = self.rng.pick(&self.users).clone();
        let target = self.rng.pick(&self.users).clone();
        let time = self.time();
        let id = format!("Directory_{}", self.rng.guid());
        let corr = self.rng.guid();
        let t = self.tenant.clone();
        let (activity, op_type) = *self.rng.pick(&[
            ("Update user", "Update"),
            ("Add member to group", "Assign"),
            ("Reset password (by admin)", "Update"),
            ("Add app role assignment to service principal", "Assign"),
            ("Delete user", "Delete"),
        ]);
        let failed = self.rng.chance(5);
        let by_app = self.rng.chance(30);
        let app = self.rng.pick(&self.apps).clone();
        let ip = self.ip();
        let _ = write!(out, "{{\"time\":\"{time}\",\"resourceId\":\"/tenants/{t}/providers/Microsoft.aadiam\",\"operationName\":\"{activity}\",\"operationVersion\":\"1.0\",\"category\":\"AuditLogs\",\"tenantId\":\"{t}\",\"resultSignature\":\"None\",\"resultType\":\"{}\",", if failed { "Failure" } else { "Success" });
        self.duration(out);
        let _ = write!(out, ",\"callerIpAddress\":\"{ip}\",\"correlationId\":\"{corr}\",\"identity\":\"{}\",\"Level\":4,\"properties\":{{\"id\":\"{id}\",\"category\":\"UserManagement\",\"correlationId\":\"{corr}\",\"result\":\"{}\",\"resultReason\":\"{}\",\"activityDisplayName\":\"{activity}\",\"activityDateTime\":\"{time}\",\"loggedByService\":\"Core Directory\",\"operationType\":\"{op_type}\",\"userAgent\":null,",
            if by_app { app.2.clone() } else { user.upn.clone() },
            if failed { "failure" } else { "success" },
            if failed { "Insufficient privileges to complete the operation." } else { "" });
        if by_app {
            let _ = write!(out, "\"initiatedBy\":{{\"app\":{{\"appId\":\"{}\",\"displayName\":\"{}\",\"servicePrincipalId\":\"{}\",\"servicePrincipalName\":null}}}},", app.0, app.2, app.1);
        } else {
            let _ = write!(out, "\"initiatedBy\":{{\"user\":{{\"id\":\"{}\",\"displayName\":null,\"userPrincipalName\":\"{}\",\"ipAddress\":\"{}\",\"roles\":[]}}}},", user.oid, user.upn, ip);
        }
        let _ = write!(out, "\"targetResources\":[{{\"id\":\"{}\",\"displayName\":\"{} {}\",\"type\":\"User\",\"userPrincipalName\":\"{}\",\"modifiedProperties\":[{{\"displayName\":\"AccountEnabled\",\"oldValue\":\"[true]\",\"newValue\":\"[false]\"}},{{\"displayName\":\"Included Updated Properties\",\"oldValue\":null,\"newValue\":\"\\\"AccountEnabled\\\"\"}},{{\"displayName\":\"TargetId.UserType\",\"oldValue\":null,\"newValue\":\"\\\"Member\\\"\"}}],\"administrativeUnits\":[]}}],\"additionalDetails\":[{{\"key\":\"UserType\",\"value\":\"Member\"}},{{\"key\":\"User-Agent\",\"value\":\"{}\"}}]}}}}",
            target.oid, json_escape(&target.given), json_escape(&target.surname), target.upn, self.rng.pick(AGENTS));
    }

    fn policy(&mut self, out: &mut String) {
        let sub = self.rng.pick(&self.subscriptions).clone();
        let op = &ADMIN_OPS[self.rng.below(3) as usize];
        let name = format!("st{:06}", self.rng.below(1_000_000));
        let rid = self.resource_id(op, &sub, "rg-data-1", &name);
        let time = self.time();
        let corr = self.rng.guid();
        let effect = *self.rng.pick(&["audit", "deny", "modify"]);
        let _ = write!(out, "{{\"time\":\"{time}\",\"resourceId\":\"{rid}\",\"operationName\":\"Microsoft.Authorization/policies/{effect}/action\",\"category\":\"Policy\",\"resultType\":\"Success\",\"resultSignature\":\"Succeeded\",\"durationMs\":0,\"callerIpAddress\":\"{}\",\"correlationId\":\"{corr}\",\"identity\":{{\"authorization\":{{\"scope\":\"{rid}\",\"action\":\"Microsoft.Storage/storageAccounts/write\"}},\"claims\":{{\"appid\":\"{}\"}}}},\"level\":\"Warning\",\"location\":\"{}\",\"properties\":{{\"isComplianceCheck\":\"False\",\"resourceLocation\":\"{}\",\"ancestors\":\"{}\",\"policies\":\"[{{\\\"policyDefinitionId\\\":\\\"/providers/Microsoft.Authorization/policyDefinitions/{}/\\\",\\\"policyAssignmentId\\\":\\\"/subscriptions/{sub}/providers/Microsoft.Authorization/policyAssignments/{}/\\\",\\\"policyAssignmentName\\\":\\\"secure-transfer\\\",\\\"policyAssignmentScope\\\":\\\"/subscriptions/{sub}\\\",\\\"policyDefinitionEffect\\\":\\\"{effect}\\\",\\\"policySetDefinitionId\\\":\\\"\\\"}}]\",\"eventCategory\":\"Policy\",\"entity\":\"{rid}\",\"message\":\"Microsoft.Authorization/policies/{effect}/action\",\"hierarchy\":\"{}\"}}}}",
            self.ip(), self.rng.guid(), self.rng.pick(REGIONS), self.rng.pick(REGIONS), self.tenant, self.rng.guid(), self.rng.guid().replace('-', ""), self.tenant);
    }

    fn health(&mut self, out: &mut String) {
        let sub = self.rng.pick(&self.subscriptions).clone();
        let op = &ADMIN_OPS[3];
        let rid = self.resource_id(op, &sub, "rg-prod-2", "vm-web-01");
        let time = self.time();
        let corr = self.rng.guid();
        let status = *self.rng.pick(&["Active", "Resolved", "Updated"]);
        let _ = write!(out, "{{\"time\":\"{time}\",\"resourceId\":\"{rid}\",\"operationName\":\"Microsoft.Resourcehealth/healthevent/{status}/action\",\"category\":\"ResourceHealth\",\"resultType\":\"{status}\",\"resultSignature\":\"\",\"durationMs\":0,\"callerIpAddress\":\"\",\"correlationId\":\"{corr}\",\"level\":\"Critical\",\"properties\":{{\"eventCategory\":\"ResourceHealth\",\"eventProperties\":{{\"title\":\"Virtual machine is unavailable\",\"details\":\"We're sorry, your virtual machine is unavailable because of connectivity loss to the remote disk. We're working to reestablish disk connectivity. No additional action is required from you at this time.\",\"currentHealthStatus\":\"Unavailable\",\"previousHealthStatus\":\"Available\",\"type\":\"Downtime\",\"cause\":\"PlatformInitiated\"}}}}}}");
    }

    fn provisioning(&mut self, out: &mut String) {
        let user = self.rng.pick(&self.users).clone();
        let time = self.time();
        let t = self.tenant.clone();
        let _ = write!(out, "{{\"time\":\"{time}\",\"resourceId\":\"/tenants/{t}/providers/Microsoft.aadiam\",\"operationName\":\"Provisioning activity\",\"operationVersion\":\"1.0\",\"category\":\"ProvisioningLogs\",\"tenantId\":\"{t}\",\"resultType\":\"Success\",\"resultSignature\":\"None\",\"durationMs\":\"{}\",\"callerIpAddress\":\"\",\"Level\":4,\"properties\":{{\"id\":\"{}\",\"activityDateTime\":\"{time}\",\"tenantId\":\"{t}\",\"jobId\":\"scim.{}\",\"cycleId\":\"{}\",\"changeId\":\"{}\",\"action\":\"Update\",\"provisioningAction\":\"update\",\"durationInMilliseconds\":{},\"servicePrincipal\":{{\"Id\":\"{}\",\"Name\":\"Salesforce\"}},\"sourceSystem\":{{\"Id\":\"{}\",\"Name\":\"Azure Active Directory\",\"Details\":{{}}}},\"targetSystem\":{{\"Id\":\"{}\",\"Name\":\"Salesforce\",\"Details\":{{\"ApplicationId\":\"{}\"}}}},\"initiatedBy\":{{\"Id\":\"\",\"Name\":\"Azure AD Provisioning Service\",\"Type\":\"application\"}},\"sourceIdentity\":{{\"identityType\":\"User\",\"Id\":\"{}\",\"Name\":\"{}\",\"details\":{{}}}},\"targetIdentity\":{{\"identityType\":\"User\",\"Id\":\"\",\"Name\":\"\",\"details\":{{}}}},\"provisioningStatusInfo\":{{\"Status\":\"success\",\"errorInformation\":null}},\"statusInfo\":{{\"status\":\"success\"}},\"provisioningSteps\":[{{\"name\":\"EntryImportAdd\",\"provisioningStepType\":0,\"status\":0,\"description\":\"Received User '{}' change of type (Add) from Azure Active Directory\",\"details\":{{}}}},{{\"name\":\"EntrySynchronizationAdd\",\"provisioningStepType\":3,\"status\":0,\"description\":\"User '{}' will be created in Salesforce (User is active and assigned in Azure Active Directory, but no matching User was found in Salesforce)\",\"details\":{{}}}}],\"modifiedProperties\":[{{\"displayName\":\"accountEnabled\",\"oldValue\":null,\"newValue\":\"True\"}},{{\"displayName\":\"userPrincipalName\",\"oldValue\":null,\"newValue\":\"{}\"}}]}}}}",
            self.rng.below(9000), self.rng.guid(), self.rng.guid(), self.rng.guid(), self.rng.guid(), self.rng.below(9000), self.rng.guid(), self.rng.guid(), self.rng.guid(), self.rng.guid(), user.oid, user.upn, user.upn, user.upn, user.upn);
    }

    fn risk_event(&mut self, out: &mut String) {
        let user = self.rng.pick(&self.users).clone();
        let time = self.time();
        let t = self.tenant.clone();
        let ip = self.ip();
        let det = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            self.rng.next_u64(),
            self.rng.next_u64(),
            self.rng.next_u64(),
            self.rng.next_u64()
        );
        let _ = write!(out, "{{\"time\":\"{time}\",\"resourceId\":\"/tenants/{t}/providers/Microsoft.aadiam\",\"operationName\":\"User Risk Detection\",\"operationVersion\":\"1.0\",\"category\":\"UserRiskEvents\",\"tenantId\":\"{t}\",\"resultSignature\":\"None\",\"durationMs\":0,\"callerIpAddress\":\"{ip}\",\"correlationId\":\"{det}\",\"identity\":\"Identity Protection\",\"Level\":4,\"location\":\"DE\",\"properties\":{{\"id\":\"{det}\",\"requestId\":\"{}\",\"correlationId\":\"{}\",\"riskType\":\"unlikelyTravel\",\"riskEventType\":\"unlikelyTravel\",\"riskState\":\"atRisk\",\"riskLevel\":\"medium\",\"riskDetail\":\"none\",\"source\":\"IdentityProtection\",\"detectionTimingType\":\"offline\",\"activity\":\"signin\",\"ipAddress\":\"{ip}\",\"location\":{{\"city\":\"Berlin\",\"state\":\"Berlin\",\"countryOrRegion\":\"DE\",\"geoCoordinates\":{{\"latitude\":52.52,\"longitude\":13.405}}}},\"activityDateTime\":\"{time}\",\"detectedDateTime\":\"{time}\",\"lastUpdatedDateTime\":\"{time}\",\"userId\":\"{}\",\"userDisplayName\":\"{} {}\",\"userPrincipalName\":\"{}\",\"additionalInfo\":\"[{{\\\"Key\\\":\\\"userAgent\\\",\\\"Value\\\":\\\"{}\\\"}}]\",\"tokenIssuerType\":\"AzureAD\",\"resourceTenantId\":null,\"homeTenantId\":\"{t}\",\"userType\":\"member\",\"crossTenantAccessType\":\"none\"}}}}",
            self.rng.guid(), self.rng.guid(), user.oid, json_escape(&user.given), json_escape(&user.surname), user.upn, self.rng.pick(AGENTS));
    }
}

/// `n` records of JSON Lines from `seed`.
pub fn generate(records: usize, seed: u64) -> String {
    Generator::new(seed).lines(records)
}

/// Like [`generate`], with the records' times from `start` (seconds since the epoch) on, about
/// 0.36 s apart.
pub fn generate_from(records: usize, seed: u64, start: u64) -> String {
    Generator::new(seed).starting_at(start).lines(records)
}

fn ascii_lower(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'é' => 'e',
            'ö' => 'o',
            'ü' => 'u',
            'ã' => 'a',
            'ß' => 's',
            '\'' => 'x',
            c => c.to_ascii_lowercase(),
        })
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn b64ish(rng: &mut Rng, n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..n).map(|_| A[rng.below(64) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_valid_json_of_realistic_size() {
        let a = generate(2000, 7);
        assert_eq!(a, generate(2000, 7));
        assert_ne!(a, generate(2000, 8));
        let mut categories = std::collections::BTreeSet::new();
        for line in a.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            categories.insert(v["category"].as_str().unwrap().to_string());
        }
        assert!(categories.len() >= 10, "{categories:?}");
        let avg = a.len() / 2000;
        assert!((1800..2700).contains(&avg), "average record size {avg}");
    }
}
