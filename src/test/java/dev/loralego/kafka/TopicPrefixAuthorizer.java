package dev.loralego.kafka;

import org.apache.kafka.common.Endpoint;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.server.authorizer.AclCreateResult;
import org.apache.kafka.server.authorizer.AclDeleteResult;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;
import org.apache.kafka.server.authorizer.AuthorizationResult;
import org.apache.kafka.server.authorizer.Authorizer;
import org.apache.kafka.server.authorizer.AuthorizerServerInfo;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * A broker authorizer for tests of what a principal without an ACL meets ({@code authorizer.class.name}): allows
 * everything, except READ on topics named {@value #NO_READ}* and any operation on topics named {@value #NO_ACCESS}*.
 * Every client of the in-JVM broker is the same (anonymous) principal, so the topic name stands for the ACL.
 */
public final class TopicPrefixAuthorizer implements Authorizer {
    /** Topics that may be described and written, not read. */
    public static final String NO_READ = "no-read.";
    /** Topics that may not even be described. */
    public static final String NO_ACCESS = "no-access.";

    /** The broker properties that install it. */
    public static Map<String, String> brokerProps() {
        return Map.of("authorizer.class.name", TopicPrefixAuthorizer.class.getName());
    }

    @Override
    public void configure(Map<String, ?> configs) {
    }

    @Override
    public Map<Endpoint, ? extends CompletionStage<Void>> start(AuthorizerServerInfo serverInfo) {
        Map<Endpoint, CompletableFuture<Void>> ready = new HashMap<>();
        for (Endpoint e : serverInfo.endpoints()) ready.put(e, CompletableFuture.completedFuture(null));
        return ready;
    }

    @Override
    public List<AuthorizationResult> authorize(AuthorizableRequestContext context, List<Action> actions) {
        return actions.stream().map(a -> denied(a) ? AuthorizationResult.DENIED : AuthorizationResult.ALLOWED).toList();
    }

    private static boolean denied(Action a) {
        if (a.resourcePattern().resourceType() != ResourceType.TOPIC) return false;
        String name = a.resourcePattern().name();
        return name.startsWith(NO_ACCESS) || (name.startsWith(NO_READ) && a.operation() == AclOperation.READ);
    }

    @Override
    public AuthorizationResult authorizeByResourceType(AuthorizableRequestContext context, AclOperation op, ResourceType type) {
        return AuthorizationResult.ALLOWED;
    }

    @Override
    public List<? extends CompletionStage<AclCreateResult>> createAcls(AuthorizableRequestContext context, List<AclBinding> bindings) {
        throw new UnsupportedOperationException("ACLs are fixed by topic name");
    }

    @Override
    public List<? extends CompletionStage<AclDeleteResult>> deleteAcls(AuthorizableRequestContext context, List<AclBindingFilter> filters) {
        throw new UnsupportedOperationException("ACLs are fixed by topic name");
    }

    @Override
    public Iterable<AclBinding> acls(AclBindingFilter filter) {
        return List.of();
    }

    @Override
    public void close() {
    }
}
