// azsdk-lifecycle runs the life of a Cognitive Services account and one deployment through the
// Azure SDK for Go against an ARM endpoint (the emulator, over TLS): a client written by Microsoft,
// not by us, so every answer the emulator gives is judged by azcore's own pollers and decoders.
//
// It logs in with azidentity's ManagedIdentityCredential (the App Service protocol:
// IDENTITY_ENDPOINT and IDENTITY_HEADER), trusts the CA in SSL_CERT_FILE, prints one JSON line per
// step on stdout and exits 1 at the first answer it did not expect, with that answer's error.
//
//	IDENTITY_ENDPOINT=https://127.0.0.1:PORT/_emulator/msi/token IDENTITY_HEADER=secret \
//	SSL_CERT_FILE=ca.pem azsdk-lifecycle -endpoint https://127.0.0.1:PORT
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// The audience public Azure's Resource Manager tokens are issued for; with it MSAL asks the
// identity endpoint for resource=https://management.azure.com/ (trailing slash), as on Azure.
const managementAudience = "https://management.azure.com/"

// Without a Retry-After header azcore waits 30 s between polls; the emulator's operations end
// in seconds.
const pollFrequency = time.Second

type settings struct {
	endpoint, subscription, clientID         string
	resourceGroup, account, location, deploy string
	modelName, modelVersion, updatedVersion  string
	timeout                                  time.Duration
}

func parseSettings() settings {
	var s settings
	flag.StringVar(&s.endpoint, "endpoint", os.Getenv("AZSDK_ENDPOINT"),
		"https base URL of Resource Manager, e.g. the emulator's TLS listener (env AZSDK_ENDPOINT)")
	flag.StringVar(&s.subscription, "subscription", envOr("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-0000000000aa"),
		"subscription id (env AZURE_SUBSCRIPTION_ID)")
	flag.StringVar(&s.clientID, "client-id", os.Getenv("AZURE_CLIENT_ID"),
		"client id of a user-assigned managed identity; empty: the system-assigned one (env AZURE_CLIENT_ID)")
	flag.StringVar(&s.resourceGroup, "resource-group", "azsdk-lifecycle", "resource group to create and delete")
	flag.StringVar(&s.account, "account", "azsdk-lifecycle-openai", "account name")
	flag.StringVar(&s.location, "location", "eastus", "location of the group and the account")
	flag.StringVar(&s.deploy, "deployment", "chat", "deployment name")
	flag.StringVar(&s.modelName, "model", "gpt-4o", "model of the deployment")
	flag.StringVar(&s.modelVersion, "model-version", "2024-08-06", "model version the deployment is created with")
	flag.StringVar(&s.updatedVersion, "updated-model-version", "2024-11-20", "model version the deployment is updated to")
	flag.DurationVar(&s.timeout, "timeout", 3*time.Minute, "deadline of the whole lifecycle")
	flag.Parse()
	if s.endpoint == "" {
		fail("setup", errors.New("no endpoint: pass -endpoint or set AZSDK_ENDPOINT"))
	}
	return s
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// step is one line of the output: its name, the HTTP status and operation headers of its first
// answer, and what it checked.
type step map[string]any

func emit(line step) {
	text, err := json.Marshal(line)
	if err != nil {
		fail("output", err)
	}
	fmt.Println(string(text))
}

func fail(name string, err error) {
	line := step{"step": name, "error": err.Error()}
	var responseErr *azcore.ResponseError
	if errors.As(err, &responseErr) {
		line["status"] = responseErr.StatusCode
		line["errorCode"] = responseErr.ErrorCode
	}
	text, _ := json.Marshal(line)
	fmt.Println(string(text))
	fmt.Fprintf(os.Stderr, "azsdk-lifecycle: %s: %v\n", name, err)
	os.Exit(1)
}

// answer describes a captured first response: status and which operation headers it carried,
// the form azcore chooses its poller by.
func answer(name string, response *http.Response) step {
	line := step{"step": name}
	if response != nil {
		line["status"] = response.StatusCode
		line["azureAsyncOperation"] = response.Header.Get("Azure-AsyncOperation") != ""
		line["location"] = response.Header.Get("Location") != ""
	}
	return line
}

func main() {
	s := parseSettings()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	run := newLifecycle(s)
	run.token(ctx)
	run.createGroup(ctx)
	run.createAccount(ctx)
	run.getAccount(ctx)
	run.listKeys(ctx)
	run.tagAccount(ctx)
	run.writeDeployment(ctx, "deployment.create", s.modelVersion)
	run.writeDeployment(ctx, "deployment.update", s.updatedVersion)
	run.getDeployment(ctx)
	run.deleteDeployment(ctx)
	run.deploymentGone(ctx)
	run.deleteAccount(ctx)
	run.getDeletedAccount(ctx)
	run.purgeAccount(ctx)
	run.deleteGroup(ctx)
	emit(step{"step": "done"})
}

type lifecycle struct {
	settings
	credential  azcore.TokenCredential
	groups      *armresources.ResourceGroupsClient
	accounts    *armcognitiveservices.AccountsClient
	deployments *armcognitiveservices.DeploymentsClient
	deleted     *armcognitiveservices.DeletedAccountsClient
}

func newLifecycle(s settings) *lifecycle {
	identity := &azidentity.ManagedIdentityCredentialOptions{}
	if s.clientID != "" {
		identity.ID = azidentity.ClientID(s.clientID)
	}
	credential, err := azidentity.NewManagedIdentityCredential(identity)
	if err != nil {
		fail("setup", err)
	}
	options := &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{
				ActiveDirectoryAuthorityHost: s.endpoint + "/",
				Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
					cloud.ResourceManager: {Endpoint: s.endpoint, Audience: managementAudience},
				},
			},
			// No retries: every request in the emulator's log is one this program meant to send,
			// and a throttled or failed answer stops it instead of being hidden.
			Retry: policy.RetryOptions{MaxRetries: -1},
		},
		// The registration probe would call Microsoft.Resources/providers, which nobody emulates.
		DisableRPRegistration: true,
	}
	l := &lifecycle{settings: s, credential: credential}
	if l.groups, err = armresources.NewResourceGroupsClient(s.subscription, credential, options); err != nil {
		fail("setup", err)
	}
	if l.accounts, err = armcognitiveservices.NewAccountsClient(s.subscription, credential, options); err != nil {
		fail("setup", err)
	}
	if l.deployments, err = armcognitiveservices.NewDeploymentsClient(s.subscription, credential, options); err != nil {
		fail("setup", err)
	}
	if l.deleted, err = armcognitiveservices.NewDeletedAccountsClient(s.subscription, credential, options); err != nil {
		fail("setup", err)
	}
	return l
}

// poll waits for an operation at the fixed frequency (the emulator's Retry-After, when sent,
// still wins, as azcore honours it).
func poll[T any](ctx context.Context, name string, poller *runtime.Poller[T]) T {
	result, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: pollFrequency})
	if err != nil {
		fail(name, err)
	}
	return result
}

func expect(name string, ok bool, format string, args ...any) {
	if !ok {
		fail(name, fmt.Errorf(format, args...))
	}
}

func value[T any](pointer *T) T {
	var zero T
	if pointer == nil {
		return zero
	}
	return *pointer
}

// token asks the identity endpoint once up front, so that a login failure is its own step
// rather than the first ARM call's.
func (l *lifecycle) token(ctx context.Context) {
	const name = "token"
	token, err := l.credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{managementAudience + "/.default"}})
	if err != nil {
		fail(name, err)
	}
	expect(name, token.Token != "", "an empty access token")
	expect(name, token.ExpiresOn.After(time.Now()), "a token that expired at %s", token.ExpiresOn)
	emit(step{"step": name, "expiresInMinutes": int(time.Until(token.ExpiresOn).Minutes())})
}

func (l *lifecycle) createGroup(ctx context.Context) {
	const name = "group.create"
	var response *http.Response
	group, err := l.groups.CreateOrUpdate(policy.WithCaptureResponse(ctx, &response), l.resourceGroup,
		armresources.ResourceGroup{Location: &l.location}, nil)
	if err != nil {
		fail(name, err)
	}
	state := value(value(group.Properties).ProvisioningState)
	expect(name, state == "Succeeded", "provisioningState %q", state)
	line := answer(name, response)
	line["provisioningState"] = state
	emit(line)
}

func (l *lifecycle) createAccount(ctx context.Context) {
	const name = "account.create"
	var response *http.Response
	kind, sku, public := "OpenAI", "S0", armcognitiveservices.PublicNetworkAccessEnabled
	poller, err := l.accounts.BeginCreate(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, l.account,
		armcognitiveservices.Account{
			Kind:     &kind,
			Location: &l.location,
			SKU:      &armcognitiveservices.SKU{Name: &sku},
			Properties: &armcognitiveservices.AccountProperties{
				CustomSubDomainName: &l.account,
				PublicNetworkAccess: &public,
			},
		}, nil)
	if err != nil {
		fail(name, err)
	}
	line := answer(name, response)
	created := poll(ctx, name, poller)
	state := value(value(created.Properties).ProvisioningState)
	expect(name, state == armcognitiveservices.ProvisioningStateSucceeded, "provisioningState %q after the poll", state)
	line["provisioningState"] = state
	emit(line)
}

func (l *lifecycle) getAccount(ctx context.Context) {
	const name = "account.get"
	var response *http.Response
	account, err := l.accounts.Get(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, l.account, nil)
	if err != nil {
		fail(name, err)
	}
	state := value(value(account.Properties).ProvisioningState)
	expect(name, state == armcognitiveservices.ProvisioningStateSucceeded, "provisioningState %q", state)
	expect(name, value(account.Kind) == "OpenAI", "kind %q", value(account.Kind))
	endpoint := value(value(account.Properties).Endpoint)
	expect(name, endpoint != "", "no endpoint")
	line := answer(name, response)
	line["endpoint"] = endpoint
	emit(line)
}

func (l *lifecycle) listKeys(ctx context.Context) {
	const name = "account.listKeys"
	var response *http.Response
	keys, err := l.accounts.ListKeys(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, l.account, nil)
	if err != nil {
		fail(name, err)
	}
	key1, key2 := value(keys.Key1), value(keys.Key2)
	expect(name, key1 != "" && key2 != "" && key1 != key2, "keys %d and %d characters long, equal: %t",
		len(key1), len(key2), key1 == key2)
	emit(answer(name, response))
}

// tagAccount sends the PATCH the SDK offers for tags (BeginUpdate).
func (l *lifecycle) tagAccount(ctx context.Context) {
	const name = "account.update"
	var response *http.Response
	purpose := "azsdk-lifecycle"
	poller, err := l.accounts.BeginUpdate(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, l.account,
		armcognitiveservices.Account{Tags: map[string]*string{"purpose": &purpose}}, nil)
	if err != nil {
		fail(name, err)
	}
	line := answer(name, response)
	updated := poll(ctx, name, poller)
	expect(name, value(updated.Tags["purpose"]) == purpose, "tags %v after the update", updated.Tags)
	line["provisioningState"] = value(value(updated.Properties).ProvisioningState)
	emit(line)
}

func (l *lifecycle) writeDeployment(ctx context.Context, name, version string) {
	var response *http.Response
	format, sku, capacity := "OpenAI", "Standard", int32(1)
	poller, err := l.deployments.BeginCreateOrUpdate(policy.WithCaptureResponse(ctx, &response), l.resourceGroup,
		l.account, l.deploy, armcognitiveservices.Deployment{
			Properties: &armcognitiveservices.DeploymentProperties{
				Model: &armcognitiveservices.DeploymentModel{Format: &format, Name: &l.modelName, Version: &version},
			},
			SKU: &armcognitiveservices.SKU{Name: &sku, Capacity: &capacity},
		}, nil)
	if err != nil {
		fail(name, err)
	}
	line := answer(name, response)
	line["doneAtOnce"] = poller.Done()
	written := poll(ctx, name, poller)
	properties := value(written.Properties)
	state := value(properties.ProvisioningState)
	expect(name, state == armcognitiveservices.DeploymentProvisioningStateSucceeded, "provisioningState %q", state)
	got := value(value(properties.Model).Version)
	expect(name, got == version, "model version %q, asked for %q", got, version)
	line["provisioningState"] = state
	line["modelVersion"] = got
	emit(line)
}

func (l *lifecycle) getDeployment(ctx context.Context) {
	const name = "deployment.get"
	var response *http.Response
	deployment, err := l.deployments.Get(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, l.account, l.deploy, nil)
	if err != nil {
		fail(name, err)
	}
	got := value(value(value(deployment.Properties).Model).Version)
	expect(name, got == l.updatedVersion, "model version %q, updated to %q", got, l.updatedVersion)
	capacity := value(value(deployment.SKU).Capacity)
	expect(name, capacity == 1, "capacity %d", capacity)
	line := answer(name, response)
	line["modelVersion"] = got
	emit(line)
}

func (l *lifecycle) deleteDeployment(ctx context.Context) {
	const name = "deployment.delete"
	var response *http.Response
	poller, err := l.deployments.BeginDelete(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, l.account, l.deploy, nil)
	if err != nil {
		fail(name, err)
	}
	line := answer(name, response)
	line["doneAtOnce"] = poller.Done()
	poll(ctx, name, poller)
	emit(line)
}

// deploymentGone expects the 404 a deleted deployment answers, as an *azcore.ResponseError.
func (l *lifecycle) deploymentGone(ctx context.Context) {
	const name = "deployment.getDeleted"
	_, err := l.deployments.Get(ctx, l.resourceGroup, l.account, l.deploy, nil)
	var responseErr *azcore.ResponseError
	if !errors.As(err, &responseErr) || responseErr.StatusCode != http.StatusNotFound {
		fail(name, fmt.Errorf("expected a 404 ResponseError, got %v", err))
	}
	emit(step{"step": name, "status": responseErr.StatusCode, "errorCode": responseErr.ErrorCode})
}

func (l *lifecycle) deleteAccount(ctx context.Context) {
	const name = "account.delete"
	var response *http.Response
	poller, err := l.accounts.BeginDelete(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, l.account, nil)
	if err != nil {
		fail(name, err)
	}
	line := answer(name, response)
	line["doneAtOnce"] = poller.Done()
	poll(ctx, name, poller)
	emit(line)
}

func (l *lifecycle) getDeletedAccount(ctx context.Context) {
	const name = "deletedAccount.get"
	var response *http.Response
	deleted, err := l.deleted.Get(policy.WithCaptureResponse(ctx, &response), l.location, l.resourceGroup, l.account, nil)
	if err != nil {
		fail(name, err)
	}
	expect(name, value(deleted.Name) == l.account, "name %q", value(deleted.Name))
	emit(answer(name, response))
}

func (l *lifecycle) purgeAccount(ctx context.Context) {
	const name = "deletedAccount.purge"
	var response *http.Response
	poller, err := l.deleted.BeginPurge(policy.WithCaptureResponse(ctx, &response), l.location, l.resourceGroup, l.account, nil)
	if err != nil {
		fail(name, err)
	}
	line := answer(name, response)
	poll(ctx, name, poller)
	emit(line)
}

func (l *lifecycle) deleteGroup(ctx context.Context) {
	const name = "group.delete"
	var response *http.Response
	poller, err := l.groups.BeginDelete(policy.WithCaptureResponse(ctx, &response), l.resourceGroup, nil)
	if err != nil {
		fail(name, err)
	}
	line := answer(name, response)
	poll(ctx, name, poller)
	emit(line)
}
