namespace HmmSim.Kernel;

/// <summary>The machine's PCI tree. The dmirror units are endpoints either behind one PCIe switch
/// (peer-to-peer TLPs turn around in the switch) or each on its own root port of a host bridge that
/// is not on the P2P whitelist (peer-to-peer through the root complex is refused).</summary>
internal sealed class PciTree
{
    private PciTree(PciDev hostBridge, IReadOnlyList<PciDev> endpoints)
    {
        HostBridge = hostBridge;
        Endpoints = endpoints;
    }

    public PciDev HostBridge { get; }
    /// <summary>The endpoint of each dmirror unit, by unit number.</summary>
    public IReadOnlyList<PciDev> Endpoints { get; }

    internal static PciTree Build(PciTopology kind, int endpoints)
    {
        var hb = new PciDev(PciNodeKind.HostBridge, "pci0000:00", null, hostBridgeWhitelisted: false);
        var eps = new List<PciDev>();
        if (kind == PciTopology.CommonSwitch)
        {
            var rp = new PciDev(PciNodeKind.RootPort, "0000:00:01.0", hb);
            var up = new PciDev(PciNodeKind.SwitchUpstream, "0000:01:00.0", rp);
            for (int i = 0; i < endpoints; i++)
            {
                var down = new PciDev(PciNodeKind.SwitchDownstream, $"0000:02:{i:x2}.0", up);
                eps.Add(new PciDev(PciNodeKind.Endpoint, $"0000:{3 + i:x2}:00.0", down));
            }
        }
        else
        {
            for (int i = 0; i < endpoints; i++)
            {
                var rp = new PciDev(PciNodeKind.RootPort, $"0000:00:{1 + i:x2}.0", hb);
                eps.Add(new PciDev(PciNodeKind.Endpoint, $"0000:{1 + i:x2}:00.0", rp));
            }
        }
        return new PciTree(hb, eps);
    }

    /// <summary>Firmware's BAR assignment at boot: each of the first <paramref name="count"/>
    /// endpoints gets a BAR of <paramref name="size"/> inside a PCI window when the machine has any,
    /// else in free physical space above RAM.</summary>
    internal void AssignBars(ResourceTree resources, int count, ulong size, Action<string> log)
    {
        var windows = resources.TopLevel.Where(r => (r.Flags & IoResourceFlags.Window) != 0).ToList();
        for (int unit = 0; unit < count && unit < Endpoints.Count; unit++)
        {
            var ep = Endpoints[unit];
            string name = $"{ep.Name} BAR1";
            Resource? bar = null;
            foreach (var w in windows)
                if (resources.GetFreeMemRegion(w, size, size, name, IoResDesc.None, GfrFlags.Descending | GfrFlags.RequestRegion, out bar) == Errno.None)
                    break;
            if (bar is null && windows.Count == 0)
                resources.GetFreeMemRegion(size, size, name, IoResDesc.None, GfrFlags.Descending | GfrFlags.RequestRegion, out bar);
            if (bar is null)
            {
                log($"pci {ep.Name}: no space for a {size >> 20} MB BAR1");
                continue;
            }
            ep.Bar = new PhysicalRange(bar.Start, size);
        }
    }
}
