//! ARNs of the resources handlers act on.

/// The partition a region belongs to (`aws`, `aws-cn`, `aws-us-gov`).
pub(crate) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Where the resource lives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    pub(crate) account: &'a str,
    pub(crate) region: &'a str,
}

impl Place<'_> {
    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
    pub(crate) fn regional(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            partition(self.region),
            self.region,
            self.account
        )
    }

    /// `arn:PARTITION:iam::ACCOUNT:RESOURCE`.
    pub(crate) fn iam(&self, resource: &str) -> String {
        format!(
            "arn:{}:iam::{}:{resource}",
            partition(self.region),
            self.account
        )
    }

    /// `arn:PARTITION:s3:::RESOURCE` (S3 ARNs name neither region nor account).
    pub(crate) fn s3(&self, resource: &str) -> String {
        format!("arn:{}:s3:::{resource}", partition(self.region))
    }

    /// A function's ARN from what `AWS::Lambda::Permission`'s `FunctionName` accepts: a
    /// name (optionally `name:qualifier`), a partial ARN (`ACCOUNT:function:name`) or an ARN.
    pub(crate) fn function(&self, name_or_arn: &str) -> String {
        if name_or_arn.starts_with("arn:") {
            name_or_arn.to_owned()
        } else if name_or_arn.contains(":function:") {
            format!(
                "arn:{}:lambda:{}:{name_or_arn}",
                partition(self.region),
                self.region
            )
        } else {
            self.regional("lambda", &format!("function:{name_or_arn}"))
        }
    }

    /// A KMS key's ARN from a key id or ARN (what `TargetKeyId` and `KmsKeyArn` accept).
    pub(crate) fn kms_key(&self, id_or_arn: &str) -> String {
        if id_or_arn.starts_with("arn:") {
            id_or_arn.to_owned()
        } else if id_or_arn.starts_with("alias/") {
            self.regional("kms", id_or_arn)
        } else {
            self.regional("kms", &format!("key/{id_or_arn}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const PLACE: Place<'static> = Place {
        account: "111111111111",
        region: "us-east-1",
    };

    #[rstest]
    #[case::name("f", "arn:aws:lambda:us-east-1:111111111111:function:f")]
    #[case::qualified_name("f:live", "arn:aws:lambda:us-east-1:111111111111:function:f:live")]
    #[case::partial_arn(
        "222222222222:function:f",
        "arn:aws:lambda:us-east-1:222222222222:function:f"
    )]
    #[case::arn(
        "arn:aws:lambda:eu-west-1:222222222222:function:f",
        "arn:aws:lambda:eu-west-1:222222222222:function:f"
    )]
    fn function_accepts_every_form_lambda_does(#[case] given: &str, #[case] expected: &str) {
        assert_eq!(PLACE.function(given), expected);
    }

    #[rstest]
    #[case::key_id("1234abcd", "arn:aws:kms:us-east-1:111111111111:key/1234abcd")]
    #[case::alias("alias/code", "arn:aws:kms:us-east-1:111111111111:alias/code")]
    #[case::arn(
        "arn:aws:kms:us-east-1:222222222222:key/k",
        "arn:aws:kms:us-east-1:222222222222:key/k"
    )]
    fn kms_key_accepts_ids_aliases_and_arns(#[case] given: &str, #[case] expected: &str) {
        assert_eq!(PLACE.kms_key(given), expected);
    }

    #[rstest]
    #[case::commercial("eu-west-1", "aws")]
    #[case::china("cn-north-1", "aws-cn")]
    #[case::govcloud("us-gov-west-1", "aws-us-gov")]
    fn partition_follows_the_region(#[case] region: &str, #[case] expected: &str) {
        assert_eq!(partition(region), expected);
    }
}
