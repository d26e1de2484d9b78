namespace HmmSim.Kernel;

/// <summary>enum pci_p2pdma_map_type (include/linux/pci-p2pdma.h).</summary>
public enum PciP2pdmaMapType
{
    /// <summary>PCI_P2PDMA_MAP_UNKNOWN: not yet computed.</summary>
    Unknown = 0,
    /// <summary>PCI_P2PDMA_MAP_NOT_SUPPORTED: no P2P path (e.g. root ports of a host bridge not on the whitelist).</summary>
    NotSupported,
    /// <summary>PCI_P2PDMA_MAP_BUS_ADDR: both devices sit behind one switch; DMA uses the PCI bus address.</summary>
    BusAddr,
    /// <summary>PCI_P2PDMA_MAP_THRU_HOST_BRIDGE: traffic goes through a whitelisted host bridge; DMA uses the CPU physical address.</summary>
    ThruHostBridge,
}

/// <summary>struct pci_p2pdma of a providing device: the PCI_P2PDMA pagemap over (part of) its BAR.</summary>
public sealed class P2pdmaProvider(PciDev pdev, DevPagemap pgmap, PhysicalRange range)
{
    /// <summary>The providing PCI device (whose BAR backs the pages).</summary>
    public PciDev Pdev { get; } = pdev;
    internal DevPagemap Pgmap { get; } = pgmap;
    /// <summary>The part of the BAR published for P2P DMA, in CPU physical address space.</summary>
    public PhysicalRange Range { get; } = range;
}

/// <summary>drivers/pci/p2pdma.c: P2P DMA providers, the distance and mapping type between two
/// devices, and the bus address a client uses for a provider's page.</summary>
public static class P2pdma
{
    /// <summary>pdev->p2pdma: the device's P2PDMA provider, or null when it registered no BAR memory.</summary>
    public static P2pdmaProvider? PciP2pdmaProvider(PciDev pdev) => pdev.P2pdmaState as P2pdmaProvider;

    /// <summary>pci_p2pdma_add_resource: a PCI_P2PDMA pagemap over <paramref name="size"/> bytes of the BAR.</summary>
    public static Errno PciP2pdmaAddResource(KernelState kernel, PciDev pdev, ulong size, ulong offset)
    {
        if (pdev.Bar.Length == 0 || offset + size > pdev.Bar.Length || size == 0)
            return Errno.EINVAL;
        var pgmap = new DevPagemap(MemoryType.PciP2pDma, pdev, new DevPagemapOps());
        var range = new PhysicalRange(pdev.Bar.Start + offset, size);
        var err = Memremap.MemremapPages(kernel, pgmap, range);
        if (err != Errno.None)
            return err;
        var provider = new P2pdmaProvider(pdev, pgmap, range);
        pdev.P2pdmaState = provider;
        pgmap.DriverData = provider;
        kernel.Dmesg.Log($"pci {pdev.Name}: added peer-to-peer DMA memory {range.Start:x}-{range.End - 1:x}");
        return Errno.None;
    }

    /// <summary>The provider a P2PDMA page belongs to.</summary>
    public static P2pdmaProvider ProviderOf(Page page) =>
        page.Pgmap?.DriverData as P2pdmaProvider ?? ThrowHelper.KernelBug<P2pdmaProvider>($"{page} is not PCI P2PDMA memory");

    /// <summary>calc_map_type_and_dist: the mapping type and distance between a provider and a client.
    /// Traffic between devices under a common switch with no ACS redirection turns around in the
    /// switch (BUS_ADDR); traffic that must go through the host bridge works only if it is
    /// whitelisted (THRU_HOST_BRIDGE), else it is not supported.</summary>
    internal static (PciP2pdmaMapType Type, int Distance) CalcMapTypeAndDist(PciDev provider, PciDev client)
    {
        if (ReferenceEquals(provider, client))
            return (PciP2pdmaMapType.BusAddr, 0);
        var up = new List<PciDev>();
        for (var a = provider; a is not null; a = a.Parent)
            up.Add(a);
        int dist = 0;
        bool acs = false;
        PciDev? common = null;
        for (var b = client; b is not null; b = b.Parent, dist++)
        {
            int i = up.IndexOf(b);
            if (i >= 0)
            {
                common = b;
                dist += i;
                break;
            }
            acs |= b.AcsRedirect;
        }
        for (var a = provider; a is not null && !ReferenceEquals(a, common); a = a.Parent)
            acs |= a.AcsRedirect;
        if (common is null)
            return (PciP2pdmaMapType.NotSupported, -1);
        if (common.Kind == PciNodeKind.HostBridge || acs)
            return (common.HostBridge.HostBridgeWhitelisted ? PciP2pdmaMapType.ThruHostBridge : PciP2pdmaMapType.NotSupported, dist);
        return (PciP2pdmaMapType.BusAddr, dist);
    }

    /// <summary>pci_p2pdma_distance: the distance, or -1 when peer-to-peer is not supported.</summary>
    internal static int PciP2pdmaDistance(PciDev provider, PciDev client)
    {
        var (type, dist) = CalcMapTypeAndDist(provider, client);
        return type == PciP2pdmaMapType.NotSupported ? -1 : dist;
    }

    /// <summary>pci_p2pdma_state / pci_p2pdma_map_type at DMA-map time: how <paramref name="client"/>
    /// reaches a provider's page, and the address it uses (the bus address, or the CPU physical
    /// address through the host bridge).</summary>
    public static (PciP2pdmaMapType Type, ulong DmaAddress) Map(PciDev client, Page page)
    {
        var provider = ProviderOf(page);
        var (type, _) = CalcMapTypeAndDist(provider.Pdev, client);
        ulong phys = page.ToPfn().ToPhys().Value;
        return type switch
        {
            PciP2pdmaMapType.BusAddr => (type, phys - provider.Pdev.BusOffset),
            PciP2pdmaMapType.ThruHostBridge => (type, phys),
            _ => (type, 0),
        };
    }
}
