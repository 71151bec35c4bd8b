"""EKS: a VPC (or yours), the cluster, a CPU system node group, a GPU node group that can sit at zero nodes,
the EBS CSI driver with a gp3 StorageClass, and the Kubernetes Cluster Autoscaler.

Why Cluster Autoscaler and not Karpenter: see docs/decisions/0008-node-autoscaler.md in the generated project.
In short, the pools are EKS managed node groups whose min/max come straight from the blueprint, and Cluster
Autoscaler scales exactly those groups (including from zero, reading labels and taints via
eks:DescribeNodegroup), so the numbers in Pulumi config are the numbers that run.

Only this module imports pulumi_aws / pulumi_eks, and only when called.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from .. import versions
from . import addons as shared_addons
from .pools import ACCELERATOR_TAG, GPUS_PER_NODE_TAG, eks_instance_types
from .spec import INGRESS_CLASS, ClusterResult, PlatformConfig, PlatformConfigError, capacity_pools

NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
AZ_COUNT = 2  # EKS needs subnets in at least two AZs
GPU_AMI_X86 = "AL2023_x86_64_NVIDIA"  # AL2023 with the NVIDIA driver and container toolkit baked in
GPU_AMI_ARM = "AL2023_ARM_64_NVIDIA"
CPU_AMI = "AL2023_x86_64_STANDARD"
AUTOSCALER_SA = ("kube-system", "cluster-autoscaler")
LB_CONTROLLER_SA = ("kube-system", "aws-load-balancer-controller")
APP_TEAM_POLICY = "AmazonEKSAdminPolicy"  # namespace-scoped below: Deployments, Secrets, RBAC in that namespace
EBS_CSI_SA = ("kube-system", "ebs-csi-controller-sa")
CA_GPU_LABEL = "k8s.amazonaws.com/accelerator"


def gpu_ami_type(instance_type: str) -> str:
    # Graviton GPU instances (g5g) need the arm64 image; everything else in the catalog is x86_64.
    family = instance_type.split(".", 1)[0]
    return GPU_AMI_ARM if family.endswith("g") and family.startswith("g5") else GPU_AMI_X86


def _subnet_cidrs(vpc_cidr: str) -> tuple[list[str], list[str]]:
    # Small public subnets for load balancers and the NAT gateway, large private ones for nodes and pods
    # (the VPC CNI gives every pod a VPC address).
    net = ipaddress.ip_network(vpc_cidr)
    halves = list(net.subnets(prefixlen_diff=1))
    private = [str(s) for s in list(halves[1].subnets(prefixlen_diff=1))[:AZ_COUNT]]
    public = [str(s) for s in list(halves[0].subnets(prefixlen_diff=4))[:AZ_COUNT]]
    return public, private


def _network(cfg: PlatformConfig, aws: Any, opts: Any) -> tuple[Any, list[Any], list[Any]]:
    import pulumi

    if cfg.vpc_id:
        if not cfg.private_subnet_ids:
            raise PlatformConfigError("vpc.id is set but vpc.privateSubnetIds is empty: list at least two private "
                                      "subnets (in different AZs) for the nodes")
        return cfg.vpc_id, list(cfg.public_subnet_ids), list(cfg.private_subnet_ids)
    name = cfg.cluster_name
    cluster_tag = {f"kubernetes.io/cluster/{name}": "shared"}
    azs = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(
        provider=opts.provider))
    vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cfg.vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
                      tags={"Name": f"{name}-vpc", **cluster_tag}, opts=opts)
    igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=opts)
    public_cidrs, private_cidrs = _subnet_cidrs(cfg.vpc_cidr)
    public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id,
                                   routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], opts=opts)
    public, private = [], []
    for i, cidr in enumerate(public_cidrs):
        subnet = aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=cidr,
                                availability_zone=azs.names.apply(lambda n, i=i: n[i]),
                                map_public_ip_on_launch=False,
                                tags={"Name": f"{name}-public-{i}", "kubernetes.io/role/elb": "1", **cluster_tag},
                                opts=opts)
        aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=subnet.id, route_table_id=public_rt.id,
                                      opts=opts)
        public.append(subnet)
    # One NAT gateway keeps the starter cheap; add one per AZ when an AZ outage must not cut node egress.
    eip = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags={"Name": f"{name}-nat"}, opts=opts)
    nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=public[0].id,
                             tags={"Name": f"{name}-nat"}, opts=opts)
    private_rt = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id,
                                    routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], opts=opts)
    for i, cidr in enumerate(private_cidrs):
        subnet = aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=cidr,
                                availability_zone=azs.names.apply(lambda n, i=i: n[i]),
                                tags={"Name": f"{name}-private-{i}", "kubernetes.io/role/internal-elb": "1",
                                      **cluster_tag}, opts=opts)
        aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=private_rt.id,
                                      opts=opts)
        private.append(subnet)
    return vpc.id, [s.id for s in public], [s.id for s in private]


def _irsa_role(aws: Any, name: str, cluster: Any, service_account: tuple[str, str], opts: Any) -> Any:
    """An IAM role only the given Kubernetes service account can assume (IRSA, via the cluster's OIDC issuer)."""
    import pulumi

    namespace, account = service_account

    def policy(args: list[str]) -> str:
        arn, url = args
        issuer = url.removeprefix("https://")
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{issuer}:sub": f"system:serviceaccount:{namespace}:{account}",
                                           f"{issuer}:aud": "sts.amazonaws.com"}},
        }]})

    doc = pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_provider_url).apply(policy)
    return aws.iam.Role(name, assume_role_policy=doc, opts=opts)


def _autoscaler_policy(cluster_name: str) -> str:
    # Read-only discovery everywhere; resize and terminate only groups tagged as this cluster's.
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": "*", "Action": [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
            "eks:DescribeNodegroup"]},
        {"Effect": "Allow", "Resource": "*",
         "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
    ]})


def _lb_controller_policy() -> str:
    """What the AWS Load Balancer Controller needs: read the VPC and ELB state, create load balancers and
    target groups tagged for a cluster, and change or delete only what carries such a tag."""
    tagged = {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": "*", "Action": [
            "ec2:Describe*", "ec2:GetSecurityGroupsForVpc", "elasticloadbalancing:Describe*",
            "acm:ListCertificates", "acm:DescribeCertificate", "iam:ListServerCertificates",
            "iam:GetServerCertificate", "cognito-idp:DescribeUserPoolClient", "wafv2:GetWebACL",
            "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL",
            "shield:GetSubscriptionState", "shield:DescribeProtection"]},
        {"Effect": "Allow", "Resource": "*", "Action": "iam:CreateServiceLinkedRole",
         "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}},
        {"Effect": "Allow", "Resource": "*", "Action": [
            "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]},
        {"Effect": "Allow", "Resource": "*", "Action": ["ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSecurityGroup"],
         "Condition": {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}},
        {"Effect": "Allow", "Resource": "*", "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}}},
        {"Effect": "Allow", "Resource": "*", "Action": [
            "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
         "Condition": {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}},
        {"Effect": "Allow", "Resource": "*", "Action": [
            "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule", "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyListenerAttributes", "elasticloadbalancing:ModifyRule",
            "elasticloadbalancing:AddListenerCertificates", "elasticloadbalancing:RemoveListenerCertificates",
            "elasticloadbalancing:SetWebAcl", "elasticloadbalancing:AddTags"]},
        {"Effect": "Allow", "Resource": "*", "Condition": tagged, "Action": [
            "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
            "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
            "elasticloadbalancing:RemoveTags"]},
    ]})


def _database(cfg: PlatformConfig, aws: Any, vpc_id: Any, private_subnets: list[Any], password: Any,
              opts: Any) -> Any:
    """RDS for PostgreSQL in the private subnets, reachable on 5432 from the VPC only; returns its address.

    pgvector ships with RDS for PostgreSQL (15.2 and later): `CREATE EXTENSION vector` needs no allow-list or
    parameter, only the engine version pinned here.
    """
    import pulumi

    name = cfg.cluster_name
    spec = cfg.database
    if cfg.vpc_id:
        cidr = aws.ec2.get_vpc_output(id=cfg.vpc_id, opts=pulumi.InvokeOutputOptions(provider=opts.provider)).cidr_block
    else:
        cidr = cfg.vpc_cidr
    group = aws.ec2.SecurityGroup(
        f"{name}-db", vpc_id=vpc_id, description=f"PostgreSQL of {name}: port 5432 from the cluster VPC only",
        ingress=[{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_blocks": [cidr],
                  "description": "nodes and pods (VPC CNI gives pods VPC addresses)"}],
        tags={"Name": f"{name}-db"}, opts=opts)
    subnets = aws.rds.SubnetGroup(f"{name}-db", subnet_ids=private_subnets, tags={"Name": f"{name}-db"}, opts=opts)
    major = spec.engine_version.split(".")[0]
    params = aws.rds.ParameterGroup(f"{name}-db", family=f"postgres{major}",
                                    parameters=[{"name": "rds.force_ssl", "value": "1"}], opts=opts)
    instance = aws.rds.Instance(
        f"{name}-db",
        identifier=f"{name}-db",
        engine="postgres",
        engine_version=spec.engine_version,
        instance_class=spec.tier,
        allocated_storage=spec.storage_gb,
        max_allocated_storage=spec.storage_gb * 5,  # storage autoscaling instead of a full disk outage
        storage_type="gp3",
        storage_encrypted=True,  # AWS-managed KMS key
        db_name=spec.name,
        username=spec.user,
        password=password,
        db_subnet_group_name=subnets.name,
        vpc_security_group_ids=[group.id],
        parameter_group_name=params.name,
        publicly_accessible=False,
        multi_az=spec.high_availability,
        backup_retention_period=spec.backup_retention_days,
        deletion_protection=spec.deletion_protection,
        # With protection on, a deliberate delete still leaves a final snapshot behind.
        skip_final_snapshot=not spec.deletion_protection,
        final_snapshot_identifier=f"{name}-db-final" if spec.deletion_protection else None,
        copy_tags_to_snapshot=True,
        auto_minor_version_upgrade=True,
        opts=opts,
    )
    return instance.address


def build(cfg: PlatformConfig, db_password: Any) -> ClusterResult:
    import pulumi
    import pulumi_aws as aws
    import pulumi_eks as eks
    import pulumi_kubernetes as k8s

    name = cfg.cluster_name
    tags = {"aistarter.dev/cluster": name, **cfg.tags}
    provider = aws.Provider(f"{name}-aws", region=cfg.region, default_tags={"tags": tags})
    opts = pulumi.ResourceOptions(provider=provider)
    partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(provider=provider)).partition

    vpc_id, public_subnets, private_subnets = _network(cfg, aws, opts)

    node_role = aws.iam.Role(f"{name}-node", assume_role_policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }), opts=opts)
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-node-{policy}", role=node_role.name,
            policy_arn=partition.apply(lambda p, policy=policy: f"arn:{p}:iam::aws:policy/{policy}"), opts=opts)
        for policy in NODE_POLICIES
    ]

    cluster = eks.Cluster(
        name,
        name=name,
        version=cfg.kubernetes_version,
        vpc_id=vpc_id,
        public_subnet_ids=public_subnets,
        private_subnet_ids=private_subnets,
        node_associate_public_ip_address=False,
        skip_default_node_group=True,  # the pools below replace the default group
        authentication_mode=eks.AuthenticationMode.API,
        instance_roles=[node_role],
        create_oidc_provider=True,  # IRSA for the autoscaler and the EBS CSI driver
        # NetworkPolicies from the app stack are only enforced when the VPC CNI's policy agent is on.
        vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
        enabled_cluster_log_types=["api", "audit", "authenticator"],
        deletion_protection=cfg.deletion_protection,
        tags=tags,
        opts=pulumi.ResourceOptions(providers={"aws": provider}, depends_on=attachments),
    )
    group_opts = pulumi.ResourceOptions(providers={"aws": provider})
    system = cfg.system_pool
    system_group = eks.ManagedNodeGroup(
        f"{name}-system",
        cluster=cluster,
        node_group_name=f"{name}-system",
        node_role=node_role,
        instance_types=[system.instance_type],
        ami_type=CPU_AMI,
        capacity_type="ON_DEMAND",
        disk_size=system.disk_size_gb,
        subnet_ids=private_subnets,
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=system.min_nodes, max_size=system.max_nodes,
                                                          desired_size=system.min_nodes),
        ignore_scaling_changes=True,  # the autoscaler owns desired size once the group exists
        labels=cfg.system_label,
        opts=group_opts,
    )
    for suffix, gpu in capacity_pools(cfg.gpu_pool):
        eks.ManagedNodeGroup(
            f"{name}-gpu{suffix}",
            cluster=cluster,
            node_group_name=f"{name}-gpu{suffix}",
            node_role=node_role,
            instance_types=eks_instance_types(gpu.instance_type),
            ami_type=gpu_ami_type(gpu.instance_type),
            capacity_type="SPOT" if gpu.spot else "ON_DEMAND",
            disk_size=gpu.disk_size_gb,
            subnet_ids=private_subnets,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=gpu.min_nodes, max_size=gpu.max_nodes,
                                                              desired_size=gpu.min_nodes),
            ignore_scaling_changes=True,
            # Cluster Autoscaler's AWS provider treats nodes with this label as GPU nodes and waits for the
            # device plugin to advertise the GPUs instead of adding another node meanwhile.
            labels={**gpu.labels, CA_GPU_LABEL: gpu.accelerator},
            taints=[aws.eks.NodeGroupTaintArgs(key=gpu.taint.key, value=gpu.taint.value,
                                               effect=_eks_effect(gpu.taint.effect))],
            tags={GPUS_PER_NODE_TAG: str(gpu.gpus_per_node), ACCELERATOR_TAG: gpu.accelerator},
            opts=group_opts,
        )

    # The app team runs the app stack: an access entry per principal, admin inside its namespace only.
    for i, arn in enumerate(cfg.app_principals):
        entry = aws.eks.AccessEntry(f"{name}-app-team-{i}", cluster_name=name, principal_arn=arn, type="STANDARD",
                                    opts=pulumi.ResourceOptions(provider=provider, depends_on=[cluster]))
        aws.eks.AccessPolicyAssociation(
            f"{name}-app-team-{i}", cluster_name=name, principal_arn=arn,
            policy_arn=partition.apply(lambda p: f"arn:{p}:eks::aws:cluster-access-policy/{APP_TEAM_POLICY}"),
            access_scope={"type": "namespace", "namespaces": [cfg.app_namespace]},
            opts=pulumi.ResourceOptions(provider=provider, depends_on=[entry]))

    k8s_provider = k8s.Provider(f"{name}-k8s", kubeconfig=cluster.kubeconfig_json, enable_server_side_apply=True)
    k8s_opts = pulumi.ResourceOptions(provider=k8s_provider, depends_on=[system_group])

    ebs_role = _irsa_role(aws, f"{name}-ebs-csi", cluster, EBS_CSI_SA, opts)
    aws.iam.RolePolicyAttachment(
        f"{name}-ebs-csi", role=ebs_role.name,
        policy_arn=partition.apply(lambda p: f"arn:{p}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"),
        opts=opts)
    ebs_addon = aws.eks.Addon(f"{name}-ebs-csi", cluster_name=name, addon_name="aws-ebs-csi-driver",
                              service_account_role_arn=ebs_role.arn, resolve_conflicts_on_create="OVERWRITE",
                              opts=pulumi.ResourceOptions(provider=provider, depends_on=[cluster, system_group]))
    k8s.storage.v1.StorageClass(
        f"{name}-{cfg.storage_class}",
        metadata={"name": cfg.storage_class,
                  "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        provisioner="ebs.csi.aws.com",
        parameters={"type": "gp3", "encrypted": "true"},
        volume_binding_mode="WaitForFirstConsumer",  # the volume follows the pod's AZ (GPU nodes may be in one AZ)
        allow_volume_expansion=True,
        reclaim_policy="Delete",
        opts=pulumi.ResourceOptions(provider=k8s_provider, depends_on=[ebs_addon]),
    )

    # metrics-server as an EKS add-on: AWS picks the build for the cluster's minor; the API's CPU HPA needs it.
    aws.eks.Addon(f"{name}-metrics-server", cluster_name=name, addon_name="metrics-server",
                  resolve_conflicts_on_create="OVERWRITE",
                  opts=pulumi.ResourceOptions(provider=provider, depends_on=[cluster, system_group]))
    shared_addons.install(cfg, k8s_provider, device_plugin=True, dcgm=True, depends_on=[system_group])

    # The AWS Load Balancer Controller turns the app's Ingress (class alb) into an ALB with pod-IP targets.
    lbc_role = _irsa_role(aws, f"{name}-lb-controller", cluster, LB_CONTROLLER_SA, opts)
    aws.iam.RolePolicy(f"{name}-lb-controller", role=lbc_role.id, policy=_lb_controller_policy(), opts=opts)
    lbc = versions.AWS_LOAD_BALANCER_CONTROLLER
    k8s.helm.v3.Release(
        f"{name}-lb-controller", name=lbc.chart, chart=lbc.chart, version=lbc.version, namespace=LB_CONTROLLER_SA[0],
        repository_opts={"repo": lbc.repo},
        values={"clusterName": name, "region": cfg.region, "vpcId": vpc_id,
                "serviceAccount": {"name": LB_CONTROLLER_SA[1],
                                   "annotations": {"eks.amazonaws.com/role-arn": lbc_role.arn}},
                "createIngressClassResource": True, "ingressClass": INGRESS_CLASS["aws"],
                "nodeSelector": cfg.system_label, "replicaCount": 2},
        opts=k8s_opts)

    autoscaler_role = _irsa_role(aws, f"{name}-cluster-autoscaler", cluster, AUTOSCALER_SA, opts)
    aws.iam.RolePolicy(f"{name}-cluster-autoscaler", role=autoscaler_role.id, policy=_autoscaler_policy(name),
                       opts=opts)
    ca = cfg.cluster_autoscaler
    k8s.helm.v3.Release(
        f"{name}-cluster-autoscaler",
        name="cluster-autoscaler",
        chart="cluster-autoscaler",
        version=ca["chartVersion"],
        namespace=AUTOSCALER_SA[0],
        repository_opts={"repo": "https://kubernetes.github.io/autoscaler"},
        values={
            "cloudProvider": "aws",
            "awsRegion": cfg.region,
            "autoDiscovery": {"clusterName": name},
            "image": {"tag": ca["imageTag"]},
            "rbac": {"serviceAccount": {"name": AUTOSCALER_SA[1],
                                        "annotations": {"eks.amazonaws.com/role-arn": autoscaler_role.arn}}},
            "extraArgs": {
                "balance-similar-node-groups": "true",
                "expander": "least-waste",
                # GPU nodes cost dollars per hour: give up an idle one after 10 minutes.
                "scale-down-unneeded-time": "10m",
                "skip-nodes-with-system-pods": "false",
            },
            "nodeSelector": cfg.system_label,
            "resources": {"requests": {"cpu": "100m", "memory": "300Mi"},
                          "limits": {"cpu": "500m", "memory": "600Mi"}},
        },
        opts=k8s_opts,
    )
    db_host = _database(cfg, aws, vpc_id, private_subnets, db_password, opts)
    return ClusterResult(kubeconfig=cluster.kubeconfig_json, storage_class=cfg.storage_class,
                         database_host=db_host, ingress_class=INGRESS_CLASS["aws"])


def _eks_effect(effect: str) -> str:
    return {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}[effect]
