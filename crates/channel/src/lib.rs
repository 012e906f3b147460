//! aztrail-channel: CloudTrail Lake channel ARNs (`arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID`)
//! and AWS account ids. The one place that knows their form, shared by the loader's destination
//! settings (whose channel's account becomes `recipientAccountId`), the CLI, and the local lake's
//! configuration and request checks.

/// A well-formed channel ARN, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelArn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: &'a str,
    /// The region.
    pub region: &'a str,
    /// The 12-digit account that owns the channel.
    pub account: &'a str,
    /// The channel id (the ARN's suffix).
    pub id: &'a str,
}

impl<'a> ChannelArn<'a> {
    /// Parses `arn`; `None` when it is not a channel ARN.
    pub fn parse(arn: &'a str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", partition, "cloudtrail", region, account, resource] = parts.as_slice() else {
            return None;
        };
        let id = resource.strip_prefix("channel/")?;
        (partition.starts_with("aws")
            && !region.is_empty()
            && is_account_id(account)
            && is_channel_id(id))
        .then_some(Self {
            partition,
            region,
            account,
            id,
        })
    }
}

/// A 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A channel id: the suffix of its ARN, which PutAuditEvents also accepts in its place.
pub fn is_channel_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_arns() {
        let c =
            ChannelArn::parse("arn:aws:cloudtrail:eu-west-1:123456789012:channel/abc-1").unwrap();
        assert_eq!(
            (c.region, c.account, c.id),
            ("eu-west-1", "123456789012", "abc-1")
        );
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws:cloudtrail:eu-west-1:1234:channel/abc",
            "arn:aws:cloudtrail:eu-west-1:123456789012:trail/x",
            "arn:aws:cloudtrail:eu-west-1:123456789012:channel/",
            "arn:aws:cloudtrail::123456789012:channel/x",
            "abc-1",
        ] {
            assert!(ChannelArn::parse(bad).is_none(), "{bad}");
        }
        assert!(is_channel_id("abc-1") && !is_channel_id("has space") && !is_channel_id(""));
    }
}
