namespace HmmSim.Kernel.Tests.Memremap;

public class MemremapTests
{
    private const ulong Mib = 1UL << 20;
    private const ulong Gib = 1UL << 30;

    public static TheoryData<HmmSim.DevicePrivateDesign> Designs => [HmmSim.DevicePrivateDesign.PhysicalAddressSpace, HmmSim.DevicePrivateDesign.DeviceAddressSpace];

    private static readonly object _owner = new();

    private static DevPagemap PrivatePgmap(List<Folio>? freed = null, List<(Folio, Folio)>? splits = null) =>
        new(MemoryType.DevicePrivate, _owner, new DevPagemapOps
        {
            FolioFree = f => freed?.Add(f),
            MigrateToRam = _ => VmFaultResult.None,
            FolioSplit = (h, t) => splits?.Add((h, t)),
        });

    /// <summary>The seeds' VM: 43-bit physical space, 8 GiB of RAM, one PCI window filling everything above it.</summary>
    private static MachineConfig Seed43Bit(HmmSim.DevicePrivateDesign design) => new()
    {
        PhysicalAddressBits = 43,
        RamBytes = 8 * Gib,
        PciWindows = [new HmmSim.PhysicalRange(8 * Gib, (1UL << 43) - 8 * Gib)],
        DevicePrivateDesign = design,
    };

    /// <summary>arm64 with 48-bit physical addresses whose only free space lies above the linear map (2^47).</summary>
    private static MachineConfig Arm64FreeSpaceAboveLinearMap(HmmSim.DevicePrivateDesign design) => new()
    {
        Architecture = HmmSim.Architecture.Arm64,
        PhysicalAddressBits = 48,
        RamBytes = 8 * Gib,
        PciWindows = [new HmmSim.PhysicalRange(8 * Gib, (1UL << 47) - 8 * Gib)],
        DevicePrivateDesign = design,
    };

    [Fact]
    public void DevicePrivateMemoryCannotBePlacedOnTheSeedVmInTodaysDesign()
    {
        using var m = new Machine(Seed43Bit(HmmSim.DevicePrivateDesign.PhysicalAddressSpace));
        var err = HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, PrivatePgmap(), 256 * Mib, "hmm_dmirror");
        Assert.Equal(Errno.ERANGE, err);
        Assert.Contains(m.Dmesg(), l => l.Contains("request_free_mem_region", StringComparison.Ordinal) && l.Contains("-ERANGE", StringComparison.Ordinal));
        Assert.DoesNotContain(IomemNames(m), n => n == "hmm_dmirror");
    }

    [Fact]
    public void DevicePrivateMemoryIsPlacedOnTheSeedVmInTheRedesign()
    {
        using var m = new Machine(Seed43Bit(HmmSim.DevicePrivateDesign.DeviceAddressSpace));
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "hmm_dmirror"));
        Assert.True(pgmap.InDevicePrivateSpace);
        Assert.Equal(65536UL, pgmap.NrPages);
        var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 123);
        Assert.True(page.IsDevicePrivate);
        Assert.Equal(new DevicePrivateIndex(pgmap.First + 123), page.ToDevicePrivateIndex());
        Assert.Throws<KernelBugException>(() => page.ToPfn());
        Assert.DoesNotContain(IomemNames(m), n => n == "hmm_dmirror");
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void TodaysDesignReservesPhysicalAddressSpaceShownInIomem()
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = HmmSim.DevicePrivateDesign.PhysicalAddressSpace });
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "testdev"));
        Assert.False(pgmap.InDevicePrivateSpace);
        // request_free_mem_region searches top-down: the region ends exactly where the lowest busy region
        // above it (the boot-time BARs and dmirror chunks) begins.
        ulong end = (pgmap.First << 12) + 256 * Mib;
        ulong above = m.Kernel.Resources.TopLevel.Where(r => r.Start >= end).Min(r => r.Start);
        Assert.Equal(above, end);
        Assert.Contains("testdev", m.Iomem(), StringComparison.Ordinal);
        var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 5);
        Assert.Equal(new Pfn(pgmap.First + 5), page.ToPfn());
        Assert.True(page.IsDevicePrivate);
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
        Assert.DoesNotContain("testdev", m.Iomem(), StringComparison.Ordinal);
    }

    [Fact]
    public void Arm64TodaysDesignFindsNoSpaceBelowTheLinearMapEnd()
    {
        using var m = new Machine(Arm64FreeSpaceAboveLinearMap(HmmSim.DevicePrivateDesign.PhysicalAddressSpace));
        Assert.Equal(Errno.ERANGE, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, PrivatePgmap(), 256 * Mib, "hmm_dmirror"));
    }

    [Fact]
    public void Arm64RedesignPlacesDevicePrivateMemory()
    {
        using var m = new Machine(Arm64FreeSpaceAboveLinearMap(HmmSim.DevicePrivateDesign.DeviceAddressSpace));
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "hmm_dmirror"));
        var folio = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 0), 0);
        folio.Unlock();
        folio.Put();
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void Arm64PfnToPageBeyondVmemmapIsABugNotSilentCorruption()
    {
        using var m = new Machine(Arm64FreeSpaceAboveLinearMap(HmmSim.DevicePrivateDesign.PhysicalAddressSpace));
        // What older kernels did: device-private pages placed above the linear map, whose struct pages
        // would lie past the end of vmemmap.
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, pgmap, new PhysicalRange(1UL << 47, 256 * Mib)));
        var ex = Assert.Throws<KernelBugException>(() => m.Kernel.Memmap.PfnToPage(new Pfn((1UL << 47) >> 12)));
        Assert.Contains("vmemmap", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void EveryHeadAndTailPageReachesThePgmapThroughTheFolio(HmmSim.DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "dev"));
        var small = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 1), 0);
        var large = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 512), 9);
        Assert.Same(pgmap, small.Page().Pgmap);
        Assert.Equal(9, large.Order);
        for (int i = 0; i < 512; i++)
        {
            var p = large.Page(i);
            Assert.Equal(large, p.Folio);
            Assert.Same(pgmap, p.Pgmap);
            Assert.True(p.IsDevicePrivate);
        }
        foreach (var f in new[] { small, large })
        {
            f.Unlock();
            f.Put();
        }
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void DeviceCoherentPagesHaveAPgmapAndAPfnAfterRam()
    {
        using var m = new Machine();
        var freed = new List<Folio>();
        var pgmap = new DevPagemap(MemoryType.DeviceCoherent, _owner, new DevPagemapOps { FolioFree = freed.Add });
        var range = new PhysicalRange(16 * Gib, 256 * Mib);
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, pgmap, range));
        var folio = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(m.Kernel.Memmap.PfnToPage(new Pfn((16 * Gib >> 12) + 1024)), 9);
        Assert.True(folio.IsDeviceCoherent);
        Assert.Equal(new Pfn((16 * Gib >> 12) + 1024 + 7), folio.Page(7).ToPfn());
        Assert.Same(pgmap, folio.Page(300).Pgmap);
        folio.Unlock();
        folio.Put();
        Assert.Equal([folio], freed);
        HmmSim.Kernel.Memremap.MemunmapPages(m.Kernel, pgmap);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void LastPutHandsTheFolioToFolioFreeAndDropsPgmapReferences(HmmSim.DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var freed = new List<Folio>();
        var pgmap = PrivatePgmap(freed);
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "dev"));
        var folio = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 1024), 9);
        Assert.Equal(1, folio.RefCount);
        Assert.True(folio.IsLocked);
        Assert.Equal(512, pgmap.References);
        folio.Unlock();
        folio.Get();
        folio.Put();
        Assert.Empty(freed);
        folio.Put();
        Assert.Equal([folio], freed);
        Assert.Equal(0, folio.RefCount);
        Assert.Equal(0, pgmap.References);
        // A freed device folio can be handed out again.
        var again = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(folio.Page(), 0);
        again.Unlock();
        again.Put();
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void MemunmapWaitsUntilTheLastPageIsFreed(HmmSim.DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "dev"));
        var folio = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 0), 0);
        folio.Unlock();
        using var unmapped = new ManualResetEventSlim();
        var t = new Thread(() =>
        {
            HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
            unmapped.Set();
        });
        t.Start();
        Assert.False(unmapped.Wait(200));   // still blocked: a page is in use
        Assert.True(pgmap.Killed);
        folio.Put();
        Assert.True(unmapped.Wait(10_000));
        t.Join();
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void SplittingADeviceFolioCallsFolioSplitForEveryNewFolio(HmmSim.DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var splits = new List<(Folio, Folio)>();
        var freed = new List<Folio>();
        var pgmap = PrivatePgmap(freed, splits);
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "dev"));
        var folio = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 2048), 9);
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.SplitDeviceFolio(m.Kernel, folio));
        // One call per new folio, then a final call with no tail, as dmirror_devmem_folio_split expects.
        Assert.Equal(512, splits.Count);
        Assert.All(splits, s => Assert.Equal(folio, s.Item1));
        Assert.True(splits[^1].Item2.IsNull);
        Assert.Equal(511, splits.Count(s => !s.Item2.IsNull));
        for (int i = 0; i < 512; i++)
        {
            var f = folio.Page(i).Folio;
            Assert.Equal(folio.Page(i), f.Page());
            Assert.Equal(0, f.Order);
            Assert.Equal(1, f.RefCount);
            Assert.True(f.IsLocked);
            Assert.Same(pgmap, f.Pgmap);
        }
        for (int i = 0; i < 512; i++)
        {
            folio.Page(i).Folio.Unlock();
            folio.Page(i).Folio.Put();
        }
        Assert.Equal(512, freed.Count);
        Assert.Equal(0, pgmap.References);
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void MemremapPagesRefusesDevicePrivateInTheRedesign()
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = HmmSim.DevicePrivateDesign.DeviceAddressSpace });
        Assert.Equal(Errno.EINVAL, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, PrivatePgmap(), new PhysicalRange(16 * Gib, 256 * Mib)));
        Assert.Contains(m.Dmesg(), l => l.Contains("memremap_device_private_pagemap", StringComparison.Ordinal));
    }

    [Fact]
    public void MemremapDevicePrivatePagemapRefusesOtherTypesAndMissingCallbacks()
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = HmmSim.DevicePrivateDesign.DeviceAddressSpace });
        var coherent = new DevPagemap(MemoryType.DeviceCoherent, _owner, new DevPagemapOps { FolioFree = _ => { } });
        Assert.Equal(Errno.EINVAL, HmmSim.Kernel.Memremap.MemremapDevicePrivatePagemap(m.Kernel, coherent, 1024));
        var noFault = new DevPagemap(MemoryType.DevicePrivate, _owner, new DevPagemapOps { FolioFree = _ => { } });
        Assert.Equal(Errno.EINVAL, HmmSim.Kernel.Memremap.MemremapDevicePrivatePagemap(m.Kernel, noFault, 1024));
        var noOwner = new DevPagemap(MemoryType.DevicePrivate, null, new DevPagemapOps { MigrateToRam = _ => VmFaultResult.None });
        Assert.Equal(Errno.EINVAL, HmmSim.Kernel.Memremap.MemremapDevicePrivatePagemap(m.Kernel, noOwner, 1024));
    }

    [Fact]
    public void TodaysDesignHasNoDevicePrivateAddressSpace()
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = HmmSim.DevicePrivateDesign.PhysicalAddressSpace });
        Assert.Equal(Errno.EINVAL, HmmSim.Kernel.Memremap.MemremapDevicePrivatePagemap(m.Kernel, PrivatePgmap(), 1024));
    }

    [Fact]
    public void MemremapPagesRefusesOverlapsAndSystemRam()
    {
        using var m = new Machine();
        var a = new DevPagemap(MemoryType.DeviceCoherent, _owner, new DevPagemapOps { FolioFree = _ => { } });
        var b = new DevPagemap(MemoryType.DeviceCoherent, _owner, new DevPagemapOps { FolioFree = _ => { } });
        var c = new DevPagemap(MemoryType.DeviceCoherent, _owner, new DevPagemapOps { FolioFree = _ => { } });
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, a, new PhysicalRange(16 * Gib, 256 * Mib)));
        Assert.Equal(Errno.ENOMEM, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, b, new PhysicalRange(16 * Gib + 128 * Mib, 256 * Mib)));
        Assert.Equal(Errno.ENXIO, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, c, new PhysicalRange(4 * Gib, 256 * Mib)));
        var noOwner = new DevPagemap(MemoryType.DeviceCoherent, null, new DevPagemapOps { FolioFree = _ => { } });
        Assert.Equal(Errno.EINVAL, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, noOwner, new PhysicalRange(32 * Gib, 256 * Mib)));
        HmmSim.Kernel.Memremap.MemunmapPages(m.Kernel, a);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void RegisteringATebibyteCostsTheModelNoPerPageMetadata(HmmSim.DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        long before = m.VmStat["struct_page_bytes_model"];
        long kernelBefore = m.VmStat["struct_page_bytes_kernel"];
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 1UL << 40, "big"));
        // The kernel would spend 64 bytes of struct page per 4 KiB page: 16 GiB.
        Assert.Equal(16L << 30, m.VmStat["struct_page_bytes_kernel"] - kernelBefore);
        Assert.Equal(before, m.VmStat["struct_page_bytes_model"]);
        // Using one page builds the memmap of its section only (128 MiB: 768 KiB of model struct pages).
        var folio = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, pgmap.NrPages - 1), 0);
        Assert.InRange(m.VmStat["struct_page_bytes_model"] - before, 1, 1L << 20);
        folio.Unlock();
        folio.Put();
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    /// <summary>The resource names /proc/iomem shows, one per line.</summary>
    private static List<string> IomemNames(Machine m) =>
        [.. m.Iomem().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l[(l.IndexOf(" : ", StringComparison.Ordinal) + 3)..].Trim())];
}
