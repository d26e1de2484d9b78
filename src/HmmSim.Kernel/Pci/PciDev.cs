namespace HmmSim.Kernel;

/// <summary>What a node of the PCI tree is.</summary>
internal enum PciNodeKind { HostBridge, RootPort, SwitchUpstream, SwitchDownstream, Endpoint }

/// <summary>A PCI function or bridge (struct pci_dev, reduced to what P2P distance needs): its place in
/// the tree, whether it redirects peer-to-peer TLPs upstream (ACS), and for an endpoint its BAR.</summary>
public sealed class PciDev
{
    internal PciDev(PciNodeKind kind, string name, PciDev? parent, bool acsRedirect = false, bool hostBridgeWhitelisted = false)
    {
        Kind = kind;
        Name = name;
        Parent = parent;
        AcsRedirect = acsRedirect;
        HostBridgeWhitelisted = hostBridgeWhitelisted;
        parent?._children.Add(this);
    }

    private readonly List<PciDev> _children = [];

    internal PciNodeKind Kind { get; }
    /// <summary>The bus/device/function name, as lspci prints it ("0000:02:00.0").</summary>
    public string Name { get; }
    internal PciDev? Parent { get; }
    internal IReadOnlyList<PciDev> Children => _children;
    /// <summary>ACS P2P Request Redirect: peer traffic below this port is sent up to the root complex.</summary>
    internal bool AcsRedirect { get; }
    /// <summary>For a host bridge: on the P2P whitelist (pci_p2pdma_whitelist), so traffic through it works.</summary>
    internal bool HostBridgeWhitelisted { get; }
    /// <summary>An endpoint's BAR exposing device memory (start, length), or default.</summary>
    public PhysicalRange Bar { get; internal set; }
    /// <summary>pci_bus_address = CPU physical address - this offset (the host bridge window's translation).</summary>
    internal ulong BusOffset { get; set; }
    /// <summary>The driver bound to the endpoint (dev_get_drvdata).</summary>
    public object? Driver { get; set; }
    /// <summary>The P2PDMA provider registered over the BAR, if any (pdev->p2pdma).</summary>
    /// <summary>pdev->p2pdma: the provider state p2pdma.c keeps (a P2pdmaProvider), opaque to the PCI core.</summary>
    internal object? P2pdmaState { get; set; }

    internal PciDev HostBridge
    {
        get
        {
            var d = this;
            while (d.Parent is not null)
                d = d.Parent;
            return d;
        }
    }

    /// <summary>The kind and name of the PCI function ("Endpoint 0000:01:00.0").</summary>
    public override string ToString() => $"{Kind} {Name}";
}
