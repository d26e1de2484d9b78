namespace HmmSim.Kernel.Tests.Proposals;

/// <summary>The three open proposals as kernel behaviour: ZONE_DEVICE_PRIVATE, per-pagemap
/// (space, index) identities, the minimal device-page descriptor, and the census behind it.</summary>
public class ProposalKernelTests
{
    private const ulong Mib = 1UL << 20;
    private static readonly object _owner = new();

    private static Machine Boot(HmmSim.DesignVariants variants) =>
        new(new MachineConfig { DevicePrivateDesign = HmmSim.DevicePrivateDesign.DeviceAddressSpace, Variants = variants });

    private static DevPagemap PrivatePgmap() => new(MemoryType.DevicePrivate, _owner, new DevPagemapOps
    {
        FolioFree = _ => { },
        MigrateToRam = _ => VmFaultResult.None,
    });

    private static DevPagemap Register(Machine m, ulong bytes)
    {
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, bytes, "proposal"));
        return pgmap;
    }

    [Theory]
    [InlineData(HmmSim.DevicePrivateZone.ZoneDevice, (int)ZoneType.Device)]
    [InlineData(HmmSim.DevicePrivateZone.ZoneDevicePrivate, (int)ZoneType.DevicePrivate)]
    public void DevicePrivatePagesJoinTheConfiguredZoneAndEveryHelperAgrees(HmmSim.DevicePrivateZone zone, int expectedZone)
    {
        var expected = (ZoneType)expectedZone;
        using var m = Boot(new HmmSim.DesignVariants { Zone = zone });
        var pgmap = Register(m, 2 * Mib);
        var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 5);
        Assert.Equal(expected, page.ZoneNum);
        Assert.True(page.IsZoneDevice);
        Assert.True(page.IsDevicePrivate);
        Assert.False(page.IsDeviceCoherent);
        Assert.False(page.IsPciP2pDma);
        Assert.True(page.Folio.IsDevicePrivate);
        Assert.True(page.Folio.IsZoneDevice);
        Assert.False(page.Folio.IsDeviceCoherent);
    }

    [Fact]
    public void UnderZoneDevicePrivateTheZoneAloneAnswersIsDevicePrivate()
    {
        // Alistair's objection: pgmap->type already tells the kinds apart. With the zone, the question
        // is answered without loading pgmap at all: the census sees no pgmap read for it.
        foreach (var (zone, pgmapReads) in new[] { (HmmSim.DevicePrivateZone.ZoneDevice, true), (HmmSim.DevicePrivateZone.ZoneDevicePrivate, false) })
        {
            using var m = Boot(new HmmSim.DesignVariants { Zone = zone });
            var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, Register(m, 2 * Mib), 0);
            using var census = DevicePageCensusSession.Start(m);
            Assert.True(page.IsDevicePrivate);
            Assert.Equal(pgmapReads, census.Rows().Any(r => r.Field == "Pgmap"));
        }
    }

    [Fact]
    public void ZoneQuestionCallSiteCountMatchesTheSource()
    {
        string root = FindRepoRoot();
        var re = new System.Text.RegularExpressions.Regex(@"\bIs(ZoneDevice|DevicePrivate)\b");
        int count = 0;
        foreach (var dir in new[] { "src/HmmSim.Kernel", "src/HmmSim.Drivers.TestHmm" })
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root, dir), "*.cs", SearchOption.AllDirectories))
                foreach (var line in File.ReadLines(file))
                    if (!line.TrimStart().StartsWith("///", StringComparison.Ordinal) && !line.Contains("public bool Is", StringComparison.Ordinal) && !line.Contains("internal const int QuestionCallSites", StringComparison.Ordinal))
                        count += re.Count(line);
        Assert.Equal(ZoneDevicePrivateSites.QuestionCallSites, count);
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "HmmSim.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("HmmSim.sln not found above the test binaries");
    }

    [Fact]
    public void PageFlagsLayoutFollowsTheHeader()
    {
        // x86-64 4-level, NODES_SHIFT 10, 5 zones: 64 - 25 flags = 39 bits; zones 3 + LRU gen 3 + nodes 10
        // + LAST_CPUPID (8 + 13) = 37, LRU refs 2: nothing unused, nothing out.
        var x86 = PageFlagsLayout.KnownConfigs.Single(c => c.Name == "x86-64 4-level, NODES_SHIFT 10");
        var today = PageFlagsLayout.Compute(x86);
        Assert.Equal(3, today.ZonesWidth);
        Assert.Equal(21, today.LastCpupidWidth);
        Assert.Equal(2, today.LruRefsWidth);
        Assert.Equal(0, today.UnusedBits);
        Assert.Equal(today, PageFlagsLayout.Compute(x86, extraZones: 1));   // 6 zones still fit 3 bits
        // 4 zones take 2 bits; the fifth costs one, which comes out of the MGLRU refs bits.
        var noDma = PageFlagsLayout.KnownConfigs.Single(c => c.Name == "x86-64 4-level no ZONE_DMA, NODES_SHIFT 10");
        Assert.Equal(2, PageFlagsLayout.Compute(noDma).ZonesWidth);
        Assert.Equal(3, PageFlagsLayout.Compute(noDma, 1).ZonesWidth);
        // A config with LAST_CPUPID exactly filling page->flags: the extra zone pushes it out
        // (LAST_CPUPID_NOT_IN_PAGE_FLAGS), which frees room for the LRU refs bits.
        var tight = new PageFlagsConfig("tight", 48, 27, 10, 4, 26, 7, 8);
        Assert.False(PageFlagsLayout.Compute(tight).LastCpupidNotInPageFlags);
        Assert.Equal(0, PageFlagsLayout.Compute(tight).LruRefsWidth);
        Assert.True(PageFlagsLayout.Compute(tight, 1).LastCpupidNotInPageFlags);
        Assert.Equal(2, PageFlagsLayout.Compute(tight, 1).LruRefsWidth);
        Assert.Throws<ArgumentOutOfRangeException>(() => PageFlagsLayout.ZonesShift(9));
    }

    [Fact]
    public void ProposalFiguresReportWhereTheExtraZoneCostsABit()
    {
        var rows = ProposalFigures.PageFlagsLayouts();
        Assert.DoesNotContain(rows, r => r.ZonesToday == 5 && r.CostsABit);
        Assert.All(rows.Where(r => r.ZonesToday == 4), r => Assert.True(r.CostsABit));
        Assert.All(rows, r => Assert.True(r.Builds));
    }

    [Fact]
    public void IdentityBudgetSplitsTheOffsetAboveTheMigrationBits()
    {
        var x86 = DevicePrivateIdentityLayout.For(HmmSim.Kernel.Arch.For(Architecture.X86_64));
        Assert.Equal(34, x86.IndexBits);
        Assert.Equal(36, x86.SpaceShift);
        Assert.True(x86.SpaceBits > 0);
        Assert.True(x86.SpaceShift + x86.SpaceBits <= Math.Min(x86.OffsetBits, HmmPfn.OrderShift));
        Assert.Equal(DevicePrivateIdentityLayout.HmmPfnFieldBits, HmmPfn.OrderShift);
        Assert.Equal(x86.GlobalLimitBytes, x86.MaxBytesPerSpace);
        var arm = DevicePrivateIdentityLayout.For(HmmSim.Kernel.Arch.For(Architecture.Arm64));
        Assert.Equal(36, arm.IndexBits);
        Assert.True(arm.SpaceShift + arm.SpaceBits <= Math.Min(arm.OffsetBits, HmmPfn.OrderShift));
    }

    [Fact]
    public void PerPagemapSpacesAreZeroBasedAndRoundTripThroughEntriesHmmAndMigratePfns()
    {
        using var m = Boot(new HmmSim.DesignVariants { Identity = HmmSim.DevicePrivateIdentity.PerPagemapSpace });
        var k = m.Kernel;
        var layout = DevicePrivateIdentityLayout.For(k.Arch);
        var a = Register(m, 2 * Mib);
        var b = Register(m, 4 * Mib);
        var space = k.DevicePrivateSpace!;
        Assert.Equal(0UL, space.IndexOf(a.First));
        Assert.Equal(0UL, space.IndexOf(b.First));
        Assert.NotEqual(space.SpaceOf(a.First), space.SpaceOf(b.First));
        Assert.Equal(0UL, b.First & ((1UL << layout.SpaceShift) - 1));
        Assert.Equal(space.SpaceOf(b.First), space.SpaceOf(b.First + 7));
        Assert.Equal(7UL, space.IndexOf(b.First + 7));
        var page = HmmSim.Kernel.Memremap.PageOf(k, b, 1000);
        Assert.Same(b, page.Pgmap);
        var entry = k.Swapops.MakeWritableDevicePrivateEntryFromPage(page);
        var back = k.Arch.PteToSwpEntry(k.Arch.SwpEntryToPte(entry));
        Assert.Equal(page, k.Swapops.PfnSwapEntryToPage(back));
        Assert.Equal(page.ToDevicePrivateIndex(), k.Swapops.SoftleafToDevicePrivateIndex(back));
        Assert.Equal(page, HmmPfn.ToPage(k, HmmPfn.FromPage(page)));
        Assert.Equal(page, MigratePfn.ToPage(k, MigratePfn.FromPage(page)));
        Assert.Same(b, space.Load(page.ToDevicePrivateIndex()));
        // The space id returns to the pool; the next pagemap takes it and starts at index 0 again.
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(k, a);
        ulong freed = a.First;
        var c = Register(m, 2 * Mib);
        Assert.Equal(freed, c.First);
    }

    [Fact]
    public void OneSpaceCannotExceedItsIndexBits()
    {
        using var m = Boot(new HmmSim.DesignVariants { Identity = HmmSim.DevicePrivateIdentity.PerPagemapSpace });
        var layout = DevicePrivateIdentityLayout.For(m.Kernel.Arch);
        var err = HmmSim.Kernel.Memremap.MemremapDevicePrivatePagemap(m.Kernel, PrivatePgmap(), (1UL << layout.IndexBits) + 1);
        Assert.Equal(Errno.E2BIG, err);
    }

    [Fact]
    public void MinimalDescriptorIsWhatTheKernelAccountsAndTheOnlyFieldsItMayTouch()
    {
        using var m = Boot(new HmmSim.DesignVariants { DevicePageMetadata = HmmSim.DevicePageMetadata.Minimal });
        long before = m.VmStat["struct_page_bytes_kernel"];
        var pgmap = Register(m, 2 * Mib);
        Assert.Equal(512L * DevicePrivateDescriptor.BytesPerPage, m.VmStat["struct_page_bytes_kernel"] - before);
        Assert.True(DevicePrivateDescriptor.BytesPerPage < 64);
        var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 3);
        var folio = HmmSim.Kernel.Memremap.ZoneDevicePageInit(page);
        Assert.Equal(1, folio.RefCount);   // held
        Assert.Throws<KernelBugException>(() => page.HasData);   // page->private: not in the descriptor
        folio.Unlock();
        folio.Put();
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
        Assert.Equal(before, m.VmStat["struct_page_bytes_kernel"]);
    }

    [Fact]
    public void CensusCountsDevicePrivateAccessesByFunctionAndIsOffOtherwise()
    {
        using var m = Boot(new HmmSim.DesignVariants());
        var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, Register(m, 2 * Mib), 0);
        var census = DevicePageCensusSession.Start(m);
        var folio = HmmSim.Kernel.Memremap.ZoneDevicePageInit(page);
        folio.Unlock();
        folio.Put();
        var rows = census.Rows();
        census.Dispose();
        Assert.Contains(rows, r => r.Field == "RefCount" && r.Write && r.Function == "Memremap.ZoneDeviceFolioInit");
        Assert.Contains(rows, r => r.Field == "flags:Locked" && r.Write);
        Assert.Contains(rows, r => r.Field == "RefCount" && r.Write && r.Function.Contains("ProposalKernelTests", StringComparison.Ordinal));
        // Stopped: further accesses are not counted.
        HmmSim.Kernel.Memremap.ZoneDevicePageInit(page).Unlock();
        Assert.Equal(rows.Sum(r => r.Count), census.Rows().Sum(r => r.Count));
        Assert.Contains(rows, r => r.Function == "(all)" && r.Field == "RefCount" && r.Write);
    }
}
