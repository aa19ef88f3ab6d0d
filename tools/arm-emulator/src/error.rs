//! Every error the emulated resource provider answers, with Azure's codes and messages.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ArmErrorBody;

/// Object id reported for the (single) caller in throttling and authorization messages.
pub(crate) const CALLER_OBJECT_ID: &str = "00000000-0000-0000-0000-0000000ca11e";

const ACCOUNT_TYPE: &str = "Microsoft.CognitiveServices/accounts";

/// An ARM error: rendered as `{"error": {"code", "message", "target"?}}` with its HTTP status.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum ArmError {
    #[error("Resource group '{0}' could not be found.")]
    ResourceGroupNotFound(String),
    #[error(
        "Invalid resource group location '{requested}'. The Resource group already exists in location '{existing}'."
    )]
    InvalidResourceGroupLocation { requested: String, existing: String },
    #[error(
        "The resource group '{0}' is in deprovisioning state and cannot perform this operation."
    )]
    ResourceGroupBeingDeleted(String),
    #[error("The location property is required for this definition.")]
    LocationRequired,
    #[error(
        "The api-version '{0}' is invalid. The supported versions for resource type 'resourceGroups' of Microsoft.Resources are the stable versions from '2016-09-01' (for example '2021-04-01')."
    )]
    InvalidResourcesApiVersion(String),
    #[error(
        "The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )]
    ResourceNotFound {
        resource_type: &'static str,
        name: String,
        resource_group: String,
    },
    /// A missing deployment, in recorded Azure's words ({0}: its full id).
    #[error("Specified resource '{0}' cannot be found.")]
    DeploymentNotFound(String),
    #[error("The operation '{0}' could not be found.")]
    OperationNotFound(String),
    #[error("The api-version query parameter (?api-version=) is required for all requests.")]
    MissingApiVersion,
    #[error(
        "The api-version '{0}' is invalid. The supported versions are the stable versions from '2021-04-30' to '2026-09-01' (for example '2024-10-01')."
    )]
    InvalidApiVersion(String),
    #[error("Authentication failed. {0}")]
    AuthenticationFailed(&'static str),
    /// A bearer token the emulator did not mint, while only minted ones are accepted.
    #[error("The access token is invalid.")]
    InvalidAuthenticationToken,
    #[error(
        "The access token expiry UTC time '{expired_at}' is earlier than current UTC time '{now}'."
    )]
    ExpiredAuthenticationToken { expired_at: String, now: String },
    #[error(
        "The access token has been obtained for wrong audience or resource '{0}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
    )]
    InvalidAuthenticationTokenAudience(String),
    #[error(
        "The client '{CALLER_OBJECT_ID}' with object id '{CALLER_OBJECT_ID}' does not have authorization to perform action 'Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete' over scope '/subscriptions/{subscription}' or the scope is invalid. If access was recently granted, please refresh your credentials."
    )]
    AuthorizationFailed { subscription: String },
    #[error(
        "Number of '{class}' requests for subscription '{subscription}' actor '{CALLER_OBJECT_ID}' exceeded. Please try again after '{retry_after}' seconds."
    )]
    Throttled {
        class: &'static str,
        subscription: String,
        retry_after: u64,
    },
    #[error(
        "Resource name '{0}' is invalid. The name must be 2 to 64 characters long, start with a letter or digit, and contain only letters, digits, '_', '.' and '-'."
    )]
    InvalidResourceName(String),
    #[error(
        "Deployment name '{0}' is invalid. The name must be 2 to 64 characters long, start with a letter or digit, and contain only letters, digits, '_', '.' and '-'."
    )]
    InvalidDeploymentName(String),
    /// A deployment path under an account that does not exist (or is soft-deleted).
    #[error(
        "Can not perform requested operation on nested resource. Parent resource '{0}' not found."
    )]
    ParentResourceNotFound(String),
    /// A write on an account or one of its deployments while another write on either runs.
    #[error(
        "Another operation is being performed on the parent resource '{0}'. Please try again later."
    )]
    ParentResourceBusy(String),
    /// A model (format, name, version) the catalogue does not hold, or an account kind that
    /// cannot deploy models.
    #[error("{0}")]
    DeploymentModelNotSupported(String),
    /// A deployment request that breaks a rule of the model, its SKU or the existing deployment.
    #[error("{message}")]
    InvalidResourceProperties { message: String, target: String },
    #[error(
        "This operation require {required} new capacity in quota {usage}, which is bigger than the current available capacity {available}. The current quota usage is {used} and the quota limit is {limit} for quota {usage}."
    )]
    InsufficientQuota {
        required: u64,
        usage: String,
        available: u64,
        used: u64,
        limit: u64,
    },
    #[error(
        "The model '{name}' version '{version}' is deprecated: new deployments and upgrades to it are not allowed. Choose a version that is not deprecated (see the models list)."
    )]
    ServiceModelDeprecated { name: String, version: String },
    /// Malformed JSON or a value of the wrong JSON type.
    #[error("{message}")]
    InvalidRequestContent {
        message: String,
        target: Option<String>,
    },
    /// A well-formed body that breaks a rule (missing required property, unknown enum value, ...).
    #[error("{message}")]
    BadRequest {
        message: String,
        target: Option<String>,
    },
    /// An account kind Azure does not offer (the message seen from Azure).
    #[error("The account type '{0}' is either invalid or unavailable in given region.")]
    InvalidApiSetId(String),
    /// An account SKU name no kind has (code and message not verified against Azure).
    #[error(
        "The SKU '{sku}' is either invalid or unavailable for account type '{kind}' in given region."
    )]
    InvalidSkuId { sku: String, kind: String },
    #[error("Changing property '{0}' is not allowed.")]
    PropertyChangeNotAllowed(&'static str),
    #[error(
        "The resource '{name}' already exists in location '{existing}' in resource group '{resource_group}'. A resource with the same name cannot be created in location '{requested}'. Please select a new resource name."
    )]
    InvalidResourceLocation {
        name: String,
        resource_group: String,
        existing: String,
        requested: String,
    },
    #[error(
        "Cannot modify resource with id '{0}' because the resource entity provisioning state is not terminal. Please wait for the provisioning state to become terminal and then retry the request."
    )]
    RequestConflict(String),
    #[error(
        "An existing resource with ID '{0}' has been soft-deleted. To restore the resource, you must specify 'restore' to be 'true' in the property. If you don't want to restore existing resource, please purge it first."
    )]
    FlagMustBeSetForRestore(String),
    #[error(
        "Could not locate a resource to restore. The resource with ID '{0}' doesn't exist or it is already purged."
    )]
    CanNotRestoreANonExistingResource(String),
    #[error(
        "Please pick a different name. The subdomain name '{0}' is not available as it's already used by a resource. If the resource using the name was deleted in the last 48 hours, you may need to purge the deleted resource..."
    )]
    CustomDomainInUse(String),
    #[error(
        "The resource type could not be found in the namespace 'Microsoft.CognitiveServices' for path '{0}'."
    )]
    InvalidResourceType(String),
    #[error("No registered resource provider found for path '{0}'.")]
    NoRegisteredProviderFound(String),
    #[error("The requested resource does not support http method '{0}'.")]
    MethodNotAllowed(String),
    /// An error scripted by a fault or carried by a failed operation.
    #[error("{}", body.message)]
    Scripted {
        status: StatusCode,
        body: ArmErrorBody,
        retry_after: Option<u64>,
    },
}

impl ArmError {
    pub(crate) fn status(&self) -> StatusCode {
        use ArmError::*;
        match self {
            ResourceGroupNotFound(_) | ResourceNotFound { .. } | OperationNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            InvalidResourceGroupLocation { .. } | ResourceGroupBeingDeleted(_) => {
                StatusCode::CONFLICT
            }
            LocationRequired | InvalidResourcesApiVersion(_) => StatusCode::BAD_REQUEST,
            InvalidAuthenticationToken
            | ExpiredAuthenticationToken { .. }
            | InvalidAuthenticationTokenAudience(_) => StatusCode::UNAUTHORIZED,
            DeploymentNotFound(_) => StatusCode::NOT_FOUND,
            InvalidApiSetId(_) | InvalidSkuId { .. } => StatusCode::BAD_REQUEST,
            InvalidResourceType(_) | NoRegisteredProviderFound(_) => StatusCode::NOT_FOUND,
            MissingApiVersion | InvalidApiVersion(_) | InvalidResourceName(_) => {
                StatusCode::BAD_REQUEST
            }
            ParentResourceNotFound(_) => StatusCode::NOT_FOUND,
            InvalidDeploymentName(_) | DeploymentModelNotSupported(_) => StatusCode::BAD_REQUEST,
            InvalidResourceProperties { .. }
            | InsufficientQuota { .. }
            | ServiceModelDeprecated { .. } => StatusCode::BAD_REQUEST,
            ParentResourceBusy(_) => StatusCode::CONFLICT,
            InvalidRequestContent { .. } | BadRequest { .. } => StatusCode::BAD_REQUEST,
            PropertyChangeNotAllowed(_) | InvalidResourceLocation { .. } => StatusCode::BAD_REQUEST,
            AuthenticationFailed(_) => StatusCode::UNAUTHORIZED,
            AuthorizationFailed { .. } => StatusCode::FORBIDDEN,
            Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            RequestConflict(_) | FlagMustBeSetForRestore(_) => StatusCode::CONFLICT,
            CanNotRestoreANonExistingResource(_) | CustomDomainInUse(_) => StatusCode::CONFLICT,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Scripted { status, .. } => *status,
        }
    }

    pub(crate) fn code(&self) -> &str {
        use ArmError::*;
        match self {
            ResourceGroupNotFound(_) => "ResourceGroupNotFound",
            InvalidResourceGroupLocation { .. } => "InvalidResourceGroupLocation",
            ResourceGroupBeingDeleted(_) => "ResourceGroupBeingDeleted",
            LocationRequired => "LocationRequired",
            InvalidResourcesApiVersion(_) => "InvalidApiVersionParameter",
            InvalidAuthenticationToken => "InvalidAuthenticationToken",
            ExpiredAuthenticationToken { .. } => "ExpiredAuthenticationToken",
            InvalidAuthenticationTokenAudience(_) => "InvalidAuthenticationTokenAudience",
            ResourceNotFound { .. } => "ResourceNotFound",
            OperationNotFound(_) => "OperationNotFound",
            DeploymentNotFound(_) => "NotFound",
            InvalidApiSetId(_) => "InvalidApiSetId",
            InvalidSkuId { .. } => "InvalidSkuId",
            MissingApiVersion => "MissingApiVersionParameter",
            InvalidApiVersion(_) => "InvalidApiVersionParameter",
            AuthenticationFailed(_) => "AuthenticationFailed",
            AuthorizationFailed { .. } => "AuthorizationFailed",
            Throttled { .. } => "SubscriptionRequestsThrottled",
            InvalidResourceName(_) => "InvalidResourceName",
            InvalidDeploymentName(_) => "InvalidResourceName",
            ParentResourceNotFound(_) => "ParentResourceNotFound",
            ParentResourceBusy(_) => "RequestConflict",
            DeploymentModelNotSupported(_) => "DeploymentModelNotSupported",
            InvalidResourceProperties { .. } => "InvalidResourceProperties",
            InsufficientQuota { .. } => "InsufficientQuota",
            ServiceModelDeprecated { .. } => "ServiceModelDeprecated",
            InvalidRequestContent { .. } => "InvalidRequestContent",
            BadRequest { .. } => "BadRequest",
            PropertyChangeNotAllowed(_) => "PropertyChangeNotAllowed",
            InvalidResourceLocation { .. } => "InvalidResourceLocation",
            RequestConflict(_) => "RequestConflict",
            FlagMustBeSetForRestore(_) => "FlagMustBeSetForRestore",
            CanNotRestoreANonExistingResource(_) => "CanNotRestoreANonExistingResource",
            CustomDomainInUse(_) => "CustomDomainInUse",
            InvalidResourceType(_) => "InvalidResourceType",
            NoRegisteredProviderFound(_) => "NoRegisteredProviderFound",
            MethodNotAllowed(_) => "MethodNotAllowed",
            Scripted { body, .. } => &body.code,
        }
    }

    /// The request field the error is about, when there is one.
    pub(crate) fn target(&self) -> Option<&str> {
        match self {
            Self::InvalidRequestContent { target, .. } | Self::BadRequest { target, .. } => {
                target.as_deref()
            }
            Self::PropertyChangeNotAllowed(property) => Some(property),
            Self::InvalidResourceName(_) => Some("accountName"),
            Self::InvalidDeploymentName(_) => Some("deploymentName"),
            Self::InvalidResourceProperties { target, .. } => Some(target),
            Self::DeploymentModelNotSupported(_) => Some("properties.model"),
            Self::ServiceModelDeprecated { .. } => Some("properties.model.version"),
            Self::InsufficientQuota { .. } => Some("sku.capacity"),
            Self::CustomDomainInUse(_) => Some("properties.customSubDomainName"),
            Self::InvalidResourceLocation { .. } => Some("location"),
            _ => None,
        }
    }

    /// The `X-Ms-Failure-Cause` header recorded Azure sends with the error: `gateway` on an
    /// account's 404 (ARM's front door answers it, not the provider).
    pub(crate) fn failure_cause(&self) -> Option<&'static str> {
        match self {
            Self::ResourceNotFound { resource_type, .. } if *resource_type == ACCOUNT_TYPE => {
                Some("gateway")
            }
            _ => None,
        }
    }

    /// Seconds for a `Retry-After` header.
    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            Self::Scripted { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn body(&self) -> Value {
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let Some(target) = self.target() {
            error["target"] = json!(target);
        }
        json!({ "error": error })
    }

    pub(crate) fn bad_request(message: String, target: &str) -> Self {
        Self::BadRequest {
            message,
            target: Some(target.to_string()),
        }
    }

    pub(crate) fn invalid_content(message: String, target: Option<&str>) -> Self {
        Self::InvalidRequestContent {
            message,
            target: target.map(str::to_string),
        }
    }

    pub(crate) fn account_not_found(name: &str, resource_group: &str) -> Self {
        Self::ResourceNotFound {
            resource_type: ACCOUNT_TYPE,
            name: name.to_string(),
            resource_group: resource_group.to_string(),
        }
    }

    pub(crate) fn model_not_supported(
        format: &str,
        name: &str,
        version: Option<&str>,
        location: &str,
    ) -> Self {
        let version = match version {
            Some(version) => format!(" version '{version}'"),
            None => String::new(),
        };
        Self::DeploymentModelNotSupported(format!(
            "Creating account deployment is not supported by the model '{name}'{version} of format '{format}' in location '{location}'. See the models list for the models, versions and SKUs available."
        ))
    }

    pub(crate) fn kind_cannot_deploy(kind: &str) -> Self {
        Self::DeploymentModelNotSupported(format!(
            "Creating account deployment is not supported by an account of kind '{kind}': only 'OpenAI' and 'AIServices' accounts deploy models."
        ))
    }

    pub(crate) fn deleted_account_not_found(name: &str, resource_group: &str) -> Self {
        Self::ResourceNotFound {
            resource_type: "Microsoft.CognitiveServices/deletedAccounts",
            name: name.to_string(),
            resource_group: resource_group.to_string(),
        }
    }
}
