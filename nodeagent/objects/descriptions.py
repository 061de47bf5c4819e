"""What the fields of the kinds mean, for ``kubectl explain`` (the OpenAPI documents'
descriptions): ``"Type.field"``, or ``"*.field"`` for a field every type that has it
shares; ``"Type"`` alone describes the type itself (``kubectl explain pods`` shows it
first).  Written for this project, in its own words; where this server does not act on
a field, the text says so."""

from __future__ import annotations

__all__ = ["DESCRIPTIONS", "TYPES", "describe"]

TYPES: dict[str, str] = {
    # --- the kinds served -----------------------------------------------------------------
    "Pod": "A group of containers that share a network namespace (one IP), volumes and a "
           "lifetime, scheduled to one node whose agent runs them. The smallest thing "
           "deployed; usually made by a controller from a template.",
    "ReplicationController": "Keeps a number of copies of a pod template running, finding "
                             "its pods by an equality selector: the oldest controller, "
                             "replaced by ReplicaSets and Deployments.",
    "ReplicaSet": "Keeps a number of copies of a pod template running, finding its pods "
                  "by a label selector. Usually owned by a Deployment, one per revision.",
    "Deployment": "Declarative updates for pods: each change of its template rolls out a "
                  "new ReplicaSet and scales the old ones down, keeping a history to roll "
                  "back to.",
    "Service": "A stable virtual IP (ClusterIP) and DNS name in front of the pods its "
               "selector picks; connections are spread over the ready ones by each node's "
               "service rules.",
    "Endpoints": "The ready and not-ready addresses behind a Service, kept by the endpoints "
                 "controller (or by hand for a Service without a selector).",
    "EndpointSlice": "A slice of a Service's endpoints, at most 100 each, with their "
                     "ready, serving and terminating conditions; what the service rules "
                     "are made from.",
    "ConfigMap": "Non-secret configuration as key/value pairs, for pods to read as "
                 "environment variables or as files in a volume.",
    "Secret": "Secret data (passwords, tokens, keys) as key/value pairs, base64 in JSON; "
              "given to pods as environment variables or files, and encrypted at rest "
              "when the cluster is set to.",
    "Namespace": "A scope for names: most objects live in one, and deleting it deletes "
                 "everything in it.",
    "Node": "A machine running this project's agent, which registers it, reports its "
            "capacity, conditions and addresses, and runs the pods scheduled to it.",
    "Event": "A report of something that happened to an object (scheduled, pulled, "
             "started, unhealthy, scaled), shown by kubectl describe; kept for an hour.",
    "Ingress": "HTTP routing rules from host names and paths to Services, served by an "
               "ingress controller.",
    "PersistentVolume": "A piece of storage in the cluster, made by an administrator or "
                        "a provisioner, that a claim binds to.",
    "PersistentVolumeClaim": "A request for storage by size and access mode; bound to a "
                             "PersistentVolume, and mounted by pods through it.",
    "ServiceAccount": "An identity for processes in pods: its tokens authenticate them to "
                      "the API, where roles say what it may do.",
    "Role": "A set of permissions (verbs on resources) within one namespace, granted by a "
            "RoleBinding.",
    "ClusterRole": "A set of permissions (verbs on resources, or non-resource URLs) for "
                   "the whole cluster or, through a RoleBinding, one namespace.",
    "RoleBinding": "Grants a Role's or ClusterRole's permissions to users, groups or "
                   "service accounts within one namespace.",
    "ClusterRoleBinding": "Grants a ClusterRole's permissions to users, groups or service "
                          "accounts in the whole cluster.",
    # --- what they hold -------------------------------------------------------------------
    "ObjectMeta": "Metadata every persisted object has: its name and namespace, labels "
                  "and annotations, owners, and what the server sets (uid, "
                  "resourceVersion, timestamps, managed fields).",
    "PodSpec": "What a pod is to run: its containers, volumes, restart policy, scheduling "
               "constraints and security settings.",
    "PodStatus": "What the node's agent observed of the pod: its phase, conditions, IPs "
                 "and each container's state. It may lag behind the truth.",
    "PodTemplateSpec": "The pod a controller makes: labels and other metadata, and a pod "
                       "spec.",
    "Container": "One process (image and command) to run in a pod, with its ports, "
                 "environment, resources, volume mounts and probes.",
    "ContainerStatus": "The state of one container of the pod: waiting, running or "
                       "terminated, its restarts and readiness.",
    "ContainerState": "One of waiting, running or terminated; none set means waiting.",
    "Probe": "A check the node's agent runs against a container (exec, HTTP GET, TCP or "
             "gRPC) on a period; enough failures in a row change the container's state.",
    "Volume": "A named directory the pod's containers may mount: an emptyDir, hostPath, "
              "ConfigMap, Secret, projected set, claim or other source.",
    "VolumeMount": "Where a volume (or a path in it) appears in a container's file tree.",
    "ResourceRequirements": "Compute resources a container asks for (requests: used to "
                            "schedule) and may not exceed (limits: enforced by its "
                            "cgroup).",
    "SecurityContext": "Privileges a container runs with: user and group, capabilities, "
                       "privilege escalation, read-only root, seccomp.",
    "PodSecurityContext": "Privileges every container of the pod gets unless its own "
                          "securityContext says otherwise.",
    "EnvVar": "An environment variable of a container, given as a value or read from a "
              "field, resource, ConfigMap or Secret.",
    "ContainerPort": "A network port the container listens on. Informational: every "
                     "port of the pod's IP is reachable whether listed or not.",
    "Affinity": "Node affinity, and pod affinity and anti-affinity: where the scheduler "
                "may or prefers to place the pod.",
    "Toleration": "Lets the pod be scheduled (or keep running) on nodes with a matching "
                  "taint.",
    "DeploymentSpec": "What the Deployment keeps: a number of replicas of a pod template, "
                      "and how a change rolls out.",
    "DeploymentStatus": "How far the rollout got: the replicas updated, ready and "
                        "available, and the conditions Progressing and Available.",
    "DeploymentStrategy": "How a new template replaces the old pods: RollingUpdate or "
                          "Recreate.",
    "ReplicaSetSpec": "What the ReplicaSet keeps: a number of replicas of a pod template, "
                      "found by a selector.",
    "ReplicaSetStatus": "The replicas observed: running, fully labeled, ready and "
                        "available.",
    "ReplicationControllerSpec": "What the ReplicationController keeps: a number of "
                                 "replicas of a pod template, found by a selector.",
    "ReplicationControllerStatus": "The replicas observed: running, fully labeled, ready "
                                   "and available.",
    "ServiceSpec": "How the Service is reached (type, ClusterIP, ports) and which pods "
                   "stand behind it (selector).",
    "ServiceStatus": "The load balancer's ingress points, for type LoadBalancer.",
    "ServicePort": "One port the Service answers on and the pods' port it goes to.",
    "NodeSpec": "How the node is to be used: its pod CIDR, taints, and whether new pods "
                "may be scheduled to it.",
    "NodeStatus": "What the node's agent reports: capacity, allocatable resources, "
                  "conditions, addresses and system information.",
    "LabelSelector": "Picks objects by their labels: every matchLabels pair and every "
                     "matchExpressions requirement must hold. An empty selector picks "
                     "every object.",
    "OwnerReference": "An object this one depends on: when every owner is gone, the "
                      "garbage collector deletes this one.",
    "ObjectReference": "Points at another object by kind, namespace and name (and "
                       "optionally uid, resourceVersion and field).",
    "IngressSpec": "The Ingress's rules, TLS settings and default backend.",
    "PersistentVolumeClaimSpec": "The storage asked for: size, access modes, storage "
                                 "class, and optionally the volume to bind.",
    "PolicyRule": "Verbs allowed on resources of API groups (optionally by name), or on "
                  "non-resource URLs.",
    "Subject": "Who a binding grants to: a User, Group or ServiceAccount.",
    "RoleRef": "The Role or ClusterRole a binding grants.",
}

DESCRIPTIONS: dict[str, str] = {
    # --- every object ---------------------------------------------------------------------
    "*.apiVersion": "The version of the schema this object is in (group/version, or v1 "
                    "for the core group). Servers convert known versions and refuse others.",
    "*.kind": "The kind of object this is, in CamelCase: what the REST resource holds.",
    "*.metadata": "Standard object metadata: name, namespace, labels, annotations, owners "
                  "and the fields the server sets (uid, resourceVersion, timestamps).",
    "*.spec": "The desired state: what the user asks for.",
    "*.status": "The observed state, written by the system (a controller, the node's "
                "agent). Read-only for users; it may lag behind the spec.",
    # --- ObjectMeta -------------------------------------------------------------------------
    "ObjectMeta.name": "Unique within a namespace (or the cluster, for cluster-scoped "
                       "kinds). Set at creation and never changed.",
    "ObjectMeta.generateName": "A prefix from which the server makes a unique name when "
                               "name is empty: five random characters are added.",
    "ObjectMeta.namespace": "The namespace the object lives in; empty for cluster-scoped "
                            "kinds. Defaults to the request's namespace.",
    "ObjectMeta.uid": "Unique for all time in this cluster: set by the server at creation.",
    "ObjectMeta.resourceVersion": "The version of this object in the store: opaque to "
                                  "clients, sent back on updates for optimistic concurrency "
                                  "and used to resume watches.",
    "ObjectMeta.generation": "A number the server increases each time the desired state "
                             "(spec) changes.",
    "ObjectMeta.creationTimestamp": "When the server created the object (UTC, RFC 3339).",
    "ObjectMeta.deletionTimestamp": "Set when deletion was asked and the object waits for "
                                    "its finalizers or its grace period; then it goes.",
    "ObjectMeta.deletionGracePeriodSeconds": "The seconds allowed for a graceful "
                                             "deletion; set with deletionTimestamp.",
    "ObjectMeta.labels": "Key/value pairs that selectors match: Services, ReplicaSets and "
                         "Deployments find their pods by them.",
    "ObjectMeta.annotations": "Key/value pairs for tools and people; not queryable.",
    "ObjectMeta.ownerReferences": "The objects this one depends on. When every owner is "
                                  "gone, the garbage collector deletes this object.",
    "ObjectMeta.finalizers": "Names that must all be removed before a deleted object "
                             "goes from the store.",
    "ObjectMeta.managedFields": "Which field manager owns which fields, as server-side "
                                "apply keeps it. Mostly for the server's use.",
    # --- Pod --------------------------------------------------------------------------------
    "PodSpec.containers": "The containers of the pod: at least one. They start together "
                          "once the init containers finished, and share the pod's network.",
    "PodSpec.initContainers": "Containers run one after another, each to completion, "
                              "before the containers start.",
    "PodSpec.ephemeralContainers": "Containers added to a running pod to debug it "
                                   "(kubectl debug), through the ephemeralcontainers "
                                   "subresource; never restarted.",
    "PodSpec.volumes": "Volumes the pod's containers can mount.",
    "PodSpec.restartPolicy": "Always, OnFailure or Never: whether a container that exits "
                             "is started again. Default Always.",
    "PodSpec.terminationGracePeriodSeconds": "Seconds between the stop signal (SIGTERM) "
                                             "and the kill (SIGKILL) when the pod is "
                                             "deleted. Default 30.",
    "PodSpec.activeDeadlineSeconds": "Seconds the pod may run, from its start, before it "
                                     "is failed.",
    "PodSpec.dnsPolicy": "How the pod's /etc/resolv.conf is made: ClusterFirst (the "
                         "cluster's DNS first, the default), Default (the node's), "
                         "ClusterFirstWithHostNet or None.",
    "PodSpec.nodeSelector": "Labels a node must have for the pod to be scheduled there.",
    "PodSpec.serviceAccountName": "The ServiceAccount the pod runs as: its token is "
                                  "mounted for the API. Default 'default'.",
    "PodSpec.serviceAccount": "Deprecated spelling of serviceAccountName.",
    "PodSpec.automountServiceAccountToken": "Whether the ServiceAccount's token is mounted "
                                            "in the containers.",
    "PodSpec.nodeName": "The node the pod runs on: set by the scheduler (pods/binding), or "
                        "by the user to skip scheduling.",
    "PodSpec.hostNetwork": "Use the node's network namespace instead of the pod's own.",
    "PodSpec.hostPID": "Use the node's PID namespace.",
    "PodSpec.hostIPC": "Use the node's IPC namespace.",
    "PodSpec.shareProcessNamespace": "One PID namespace for all the pod's containers, so "
                                     "they see each other's processes.",
    "PodSpec.securityContext": "Security settings for every container of the pod (user, "
                               "group, fsGroup, seccomp, sysctls).",
    "PodSpec.imagePullSecrets": "Secrets holding registry credentials for pulling the "
                                "images.",
    "PodSpec.hostname": "The pod's host name; default the pod's name.",
    "PodSpec.subdomain": "With hostname, gives the pod the DNS name "
                         "hostname.subdomain.namespace.svc.",
    "PodSpec.affinity": "Node affinity, and pod affinity and anti-affinity: where the "
                        "scheduler may or prefers to place the pod.",
    "PodSpec.schedulerName": "The scheduler that places the pod. Default "
                             "default-scheduler.",
    "PodSpec.tolerations": "Taints of nodes the pod tolerates (to be scheduled there, or to "
                           "stay when the taint is NoExecute, for tolerationSeconds).",
    "PodSpec.hostAliases": "Entries added to the pod's /etc/hosts.",
    "PodSpec.priorityClassName": "The PriorityClass that gives the pod its priority.",
    "PodSpec.priority": "The pod's priority, from its PriorityClass: higher goes first.",
    "PodSpec.enableServiceLinks": "Whether the Services of the namespace are given to the "
                                  "containers as environment variables (docker links "
                                  "style). Default true.",
    "PodSpec.preemptionPolicy": "Whether the pod may preempt pods of lower priority. "
                                "Default PreemptLowerPriority.",
    "PodSpec.runtimeClassName": "The RuntimeClass to run the pod with.",
    "PodSpec.overhead": "Resources the pod's sandbox uses besides its containers.",
    "PodSpec.setHostnameAsFQDN": "Make the pod's host name its fully qualified name.",
    "PodSpec.hostUsers": "false: the pod gets its own user namespace.",
    "Pod.spec": "What the pod runs: its containers, volumes and scheduling constraints.",
    "Pod.status": "The pod's phase, conditions, IPs and each container's state, as its "
                  "node's agent reports them.",
    "PodStatus.phase": "Pending, Running, Succeeded, Failed or Unknown: where the pod is in "
                       "its life.",
    "PodStatus.conditions": "PodScheduled, Initialized, ContainersReady and Ready, each "
                            "True or False with the time it last changed.",
    "PodStatus.podIP": "The pod's address on the pod network; empty until it has one.",
    "PodStatus.podIPs": "The pod's addresses, one per IP family.",
    "PodStatus.hostIP": "The address of the node the pod runs on.",
    "PodStatus.startTime": "When the node's agent accepted the pod.",
    "PodStatus.containerStatuses": "The state of each container: waiting, running or "
                                   "terminated, its restarts and readiness.",
    "PodStatus.qosClass": "Guaranteed, Burstable or BestEffort, from the containers' "
                          "requests and limits.",
    # --- Container --------------------------------------------------------------------------
    "Container.name": "The container's name, unique in the pod (a DNS label).",
    "Container.image": "The image to run, as the registry names it (name:tag or "
                       "name@digest).",
    "Container.command": "The entrypoint, instead of the image's ENTRYPOINT. Not run in a "
                         "shell; $(VAR) is expanded from the container's environment.",
    "Container.args": "The entrypoint's arguments, instead of the image's CMD; $(VAR) is "
                      "expanded.",
    "Container.workingDir": "The working directory; default the image's.",
    "Container.ports": "Ports the container listens on. Informational, except that a "
                       "named port can be a probe's or a Service's target.",
    "Container.env": "Environment variables, set in order; a value can come from a "
                     "ConfigMap, a Secret or a field of the pod.",
    "Container.envFrom": "Every key of a ConfigMap or Secret as an environment variable.",
    "Container.resources": "CPU and memory requests (what the scheduler reserves) and "
                           "limits (what the cgroup enforces).",
    "Container.volumeMounts": "The pod's volumes mounted into this container's filesystem.",
    "Container.livenessProbe": "A check that, failing failureThreshold times, restarts "
                               "the container.",
    "Container.readinessProbe": "A check that, failing, takes the pod out of its Services' "
                                "endpoints until it passes again.",
    "Container.startupProbe": "A check that must pass before the liveness and readiness "
                              "probes start: for slow starters.",
    "Container.lifecycle": "Actions run right after the container starts (postStart) and "
                           "before it is stopped (preStop).",
    "Container.terminationMessagePath": "A file whose contents become the container's "
                                        "termination message. Default "
                                        "/dev/termination-log.",
    "Container.terminationMessagePolicy": "File (the message file only, the default) or "
                                          "FallbackToLogsOnError.",
    "Container.imagePullPolicy": "Always, IfNotPresent or Never. Default Always for the "
                                 "latest tag (or none), else IfNotPresent.",
    "Container.securityContext": "Security settings of this container: user, "
                                 "capabilities, privileged, read-only root, seccomp.",
    "Container.stdin": "Keep a stdin open for the container's process (kubectl attach "
                       "writes to it).",
    "Container.stdinOnce": "Close the stdin after the first attach ends.",
    "Container.tty": "Give the container a terminal (with stdin: kubectl run -it). This "
                     "server gives it pipes, not a terminal.",
    "ContainerPort.name": "A name for the port (an IANA service name), for probes and "
                          "Services to refer to.",
    "ContainerPort.containerPort": "The port number the container listens on.",
    "ContainerPort.hostPort": "A port on the node forwarded to this one.",
    "ContainerPort.hostIP": "The node address hostPort binds to.",
    "ContainerPort.protocol": "TCP, UDP or SCTP. Default TCP.",
    "EnvVar.name": "The variable's name.",
    "EnvVar.value": "The value; $(VAR) refers to earlier variables.",
    "EnvVar.valueFrom": "Where the value comes from instead: a ConfigMap or Secret key, a "
                        "field of the pod, or a container's resource.",
    "ResourceRequirements.requests": "What the container needs: the scheduler places the "
                                     "pod where the node has it left (cpu in cores or "
                                     "millicores, memory in bytes).",
    "ResourceRequirements.limits": "The most the container may use: memory over the limit "
                                   "is killed, cpu is throttled.",
    "VolumeMount.name": "The name of one of the pod's volumes.",
    "VolumeMount.mountPath": "Where in the container the volume appears.",
    "VolumeMount.readOnly": "Mount it read-only.",
    "VolumeMount.subPath": "Mount this path inside the volume instead of its root.",
    "Probe.httpGet": "An HTTP GET that passes with a status from 200 to 399.",
    "Probe.tcpSocket": "A TCP connection that passes when it opens.",
    "Probe.exec": "A command run in the container that passes when it exits 0.",
    "Probe.grpc": "A gRPC health check that passes when it answers SERVING.",
    "Probe.initialDelaySeconds": "Seconds after the container started before the first "
                                 "probe.",
    "Probe.periodSeconds": "Seconds between probes. Default 10.",
    "Probe.timeoutSeconds": "Seconds a probe may take. Default 1.",
    "Probe.successThreshold": "Passes in a row to count as passing after a failure. "
                              "Default 1 (and must be 1 for liveness and startup).",
    "Probe.failureThreshold": "Failures in a row to count as failing. Default 3.",
    "Probe.terminationGracePeriodSeconds": "The grace period when this probe's failure "
                                           "kills the container, instead of the pod's.",
    # --- Deployment and ReplicaSet ------------------------------------------------------------
    "DeploymentSpec.replicas": "How many pods to run. Default 1.",
    "DeploymentSpec.selector": "The labels of the pods this Deployment manages: must match "
                               "the template's labels, and cannot change.",
    "DeploymentSpec.template": "The pod each replica is made from; a change to it rolls "
                               "out a new ReplicaSet.",
    "DeploymentSpec.strategy": "How a new template replaces the old pods: RollingUpdate "
                               "(the default, within maxSurge and maxUnavailable) or "
                               "Recreate.",
    "DeploymentSpec.minReadySeconds": "Seconds a new pod must be ready before it counts as "
                                      "available.",
    "DeploymentSpec.revisionHistoryLimit": "Old ReplicaSets kept for rollback. Default 10.",
    "DeploymentSpec.paused": "A paused Deployment rolls out no template change until "
                             "resumed.",
    "DeploymentSpec.progressDeadlineSeconds": "Seconds without progress before the rollout "
                                              "is reported failed (ProgressDeadline"
                                              "Exceeded). Default 600.",
    "DeploymentStrategy.type": "RollingUpdate or Recreate.",
    "DeploymentStrategy.rollingUpdate": "maxSurge (pods over replicas) and maxUnavailable "
                                        "(pods under replicas) during a rollout, numbers or "
                                        "percentages. Default 25% each.",
    "ReplicaSetSpec.replicas": "How many pods to run. Default 1.",
    "ReplicaSetSpec.selector": "The labels of the pods this ReplicaSet counts: must match "
                               "the template's labels.",
    "ReplicaSetSpec.template": "The pod made when there are too few.",
    "ReplicaSetSpec.minReadySeconds": "Seconds a new pod must be ready before it counts as "
                                      "available.",
    # --- Service ----------------------------------------------------------------------------
    "ServiceSpec.type": "ClusterIP (a virtual address inside the cluster, the default), "
                        "NodePort (also a port on every node), LoadBalancer or "
                        "ExternalName (a DNS alias).",
    "ServiceSpec.selector": "The labels of the pods that serve this Service: their "
                            "addresses become its endpoints. Without a selector the "
                            "Endpoints are the user's to write.",
    "ServiceSpec.ports": "The ports the Service exposes and the pods' ports they go to.",
    "ServiceSpec.clusterIP": "The Service's virtual address: given from the service range "
                             "unless set, 'None' for a headless Service. Cannot change.",
    "ServiceSpec.clusterIPs": "The Service's virtual addresses, one per IP family; the "
                              "first is clusterIP.",
    "ServiceSpec.externalIPs": "Addresses of nodes at which the Service also answers.",
    "ServiceSpec.sessionAffinity": "ClientIP: each client's connections go to the same pod "
                                   "(for sessionAffinityConfig's timeout). Default None.",
    "ServiceSpec.externalName": "The DNS name an ExternalName Service is an alias of.",
    "ServiceSpec.externalTrafficPolicy": "Cluster (any ready pod, the default) or Local "
                                         "(only pods on the node the traffic came to).",
    "ServiceSpec.internalTrafficPolicy": "Cluster (the default) or Local, for traffic from "
                                         "inside the cluster.",
    "ServiceSpec.publishNotReadyAddresses": "List pods in the endpoints before they are "
                                            "ready.",
    "ServiceSpec.ipFamilies": "IPv4 and/or IPv6, in order.",
    "ServiceSpec.ipFamilyPolicy": "SingleStack, PreferDualStack or RequireDualStack.",
    "ServicePort.name": "The port's name: needed when there are several.",
    "ServicePort.port": "The port the Service answers on.",
    "ServicePort.targetPort": "The pods' port, by number or by the name of a container "
                              "port. Default the same as port.",
    "ServicePort.nodePort": "With type NodePort: the port on every node (30000-32767), "
                            "given unless set.",
    "ServicePort.protocol": "TCP, UDP or SCTP. Default TCP.",
    "ServicePort.appProtocol": "The application protocol (a hint for proxies).",
}


def describe(type_name: str, field: str) -> str:
    """A field's description, or ''."""
    return DESCRIPTIONS.get(f"{type_name}.{field}") or DESCRIPTIONS.get(f"*.{field}", "")
