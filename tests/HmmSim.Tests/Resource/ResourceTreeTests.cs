namespace HmmSim.Kernel.Tests.Resource;

public class ResourceTreeTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    private static ResourceTree X86(int bits, ulong ram, params PhysicalRange[] windows) =>
        ResourceTree.Boot(bits, (1UL << bits) - 1, ram, windows);

    [Fact]
    public void RequestResource_OverlappingSibling_ReturnsEbusy()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        Assert.Equal(Errno.None, tree.RequestResource(tree.Root, new HmmSim.Kernel.Resource("a", 0x1000, 0x1fff, IoResourceFlags.Mem)));
        Assert.Equal(Errno.EBUSY, tree.RequestResource(tree.Root, new HmmSim.Kernel.Resource("b", 0x1800, 0x27ff, IoResourceFlags.Mem)));
    }

    [Fact]
    public void RequestResource_OutsideParent_ReturnsEbusy()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        var parent = new HmmSim.Kernel.Resource("p", 0x1000, 0x1fff, IoResourceFlags.Mem);
        tree.RequestResource(tree.Root, parent);
        Assert.Equal(Errno.EBUSY, tree.RequestResource(parent, new HmmSim.Kernel.Resource("c", 0x1f00, 0x20ff, IoResourceFlags.Mem)));
    }

    [Fact]
    public void RequestResource_InsideParent_NestsAsChild()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        var parent = new HmmSim.Kernel.Resource("p", 0x1000, 0x1fff, IoResourceFlags.Mem);
        var child = new HmmSim.Kernel.Resource("c", 0x1100, 0x11ff, IoResourceFlags.Mem);
        tree.RequestResource(tree.Root, parent);
        Assert.Equal(Errno.None, tree.RequestResource(parent, child));
        Assert.Same(parent, child.Parent);
        Assert.Same(child, parent.Child);
    }

    [Fact]
    public void ReleaseResource_FreesTheRangeForAnotherRequest()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        var a = new HmmSim.Kernel.Resource("a", 0x1000, 0x1fff, IoResourceFlags.Mem);
        tree.RequestResource(tree.Root, a);
        Assert.Equal(Errno.None, tree.ReleaseResource(a));
        Assert.Null(a.Parent);
        Assert.Equal(Errno.None, tree.RequestResource(tree.Root, new HmmSim.Kernel.Resource("b", 0x1800, 0x27ff, IoResourceFlags.Mem)));
    }

    [Fact]
    public void ReleaseResource_NotInTree_ReturnsEinval()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        Assert.Equal(Errno.EINVAL, tree.ReleaseResource(new HmmSim.Kernel.Resource("x", 0, 0xfff, IoResourceFlags.Mem)));
    }

    [Fact]
    public void InsertResource_AroundExisting_AdoptsThemAsChildren()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        var a = new HmmSim.Kernel.Resource("a", 0x1000, 0x1fff, IoResourceFlags.Mem);
        var b = new HmmSim.Kernel.Resource("b", 0x3000, 0x3fff, IoResourceFlags.Mem);
        tree.RequestResource(tree.Root, a);
        tree.RequestResource(tree.Root, b);
        var big = new HmmSim.Kernel.Resource("big", 0x0, 0xffff, IoResourceFlags.Mem);
        Assert.Equal(Errno.None, tree.InsertResource(tree.Root, big));
        Assert.Equal(new[] { big }, tree.TopLevel);
        Assert.Equal(new[] { a, b }, big.Children());
        Assert.Same(big, b.Parent);
    }

    [Fact]
    public void InsertResource_PartialOverlap_ReturnsEbusy()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        tree.RequestResource(tree.Root, new HmmSim.Kernel.Resource("a", 0x1000, 0x1fff, IoResourceFlags.Mem));
        Assert.Equal(Errno.EBUSY, tree.InsertResource(tree.Root, new HmmSim.Kernel.Resource("x", 0x1800, 0x2fff, IoResourceFlags.Mem)));
    }

    [Fact]
    public void RemoveResource_MovesChildrenBackUp()
    {
        var tree = new ResourceTree(32, uint.MaxValue);
        var a = new HmmSim.Kernel.Resource("a", 0x1000, 0x1fff, IoResourceFlags.Mem);
        tree.RequestResource(tree.Root, a);
        var big = new HmmSim.Kernel.Resource("big", 0x0, 0xffff, IoResourceFlags.Mem);
        tree.InsertResource(tree.Root, big);
        Assert.Equal(Errno.None, tree.RemoveResource(big));
        Assert.Equal(new[] { a }, tree.TopLevel);
        Assert.Same(tree.Root, a.Parent);
    }

    [Fact]
    public void RequestRegion_InsidePciWindow_NestsUnderTheWindow()
    {
        var tree = X86(46, 8 * GiB, new PhysicalRange(8 * GiB, 8 * GiB));
        var window = tree.TopLevel.Single(r => r.Name == ResourceTree.PciBusName);
        Assert.Equal(Errno.None, tree.RequestRegion(8 * GiB + 0x10_0000, MiB, "0000:00:02.0", IoResourceFlags.None, out var bar));
        Assert.Same(window, bar!.Parent);
        Assert.Equal(IoResourceFlags.Mem | IoResourceFlags.Busy, bar.Flags);
    }

    [Fact]
    public void RequestRegion_OverBusyRegion_ReturnsEbusy()
    {
        var tree = X86(46, 8 * GiB);
        Assert.Equal(Errno.EBUSY, tree.RequestRegion(4 * GiB, MiB, "x", IoResourceFlags.None, out var res));
        Assert.Null(res);
    }

    [Fact]
    public void ReleaseRegion_InsideWindow_RemovesTheBusyChild()
    {
        var tree = X86(46, 8 * GiB, new PhysicalRange(8 * GiB, 8 * GiB));
        tree.RequestRegion(8 * GiB, MiB, "bar", IoResourceFlags.None, out _);
        Assert.Equal(Errno.None, tree.ReleaseRegion(8 * GiB, MiB));
        Assert.Null(tree.TopLevel.Single(r => r.Name == ResourceTree.PciBusName).Child);
    }

    [Fact]
    public void ReleaseRegion_Nonexistent_ReturnsEinval()
    {
        var tree = X86(46, 8 * GiB);
        Assert.Equal(Errno.EINVAL, tree.ReleaseRegion(16 * GiB, MiB));
    }

    [Fact]
    public void RequestFreeMemRegion_46Bit_PlacedAtHighestAlignedAddress()
    {
        var tree = X86(46, 8 * GiB);
        Assert.Equal(Errno.None, tree.RequestFreeMemRegion(256 * MiB, "dmirror", out var res));
        Assert.Equal(0x3fff_f000_0000UL, res!.Start);
        Assert.Equal(0x3fff_ffff_ffffUL, res.End);
        Assert.Equal(IoResourceFlags.Mem | IoResourceFlags.Busy, res.Flags);
        Assert.Equal(IoResDesc.DevicePrivateMemory, res.Desc);
        Assert.Same(tree.Root, res.Parent);
    }

    [Fact]
    public void RequestFreeMemRegion_Second_GoesJustBelowTheFirst()
    {
        var tree = X86(46, 8 * GiB);
        tree.RequestFreeMemRegion(256 * MiB, "dmirror0", out var first);
        Assert.Equal(Errno.None, tree.RequestFreeMemRegion(256 * MiB, "dmirror1", out var second));
        Assert.Equal(0x3fff_e000_0000UL, second!.Start);
        Assert.Equal(first!.Start - 1, second.End);
    }

    [Fact]
    public void RequestFreeMemRegion_Seed004_43BitPciWindowAfterRam_ReturnsErange()
    {
        var tree = X86(43, 8 * GiB, new PhysicalRange(8 * GiB, (1UL << 43) - 8 * GiB));
        Assert.Equal(Errno.ERANGE, tree.RequestFreeMemRegion(256 * MiB, "dmirror", out var res));
        Assert.Null(res);
    }

    [Fact]
    public void RequestFreeMemRegion_Arm64_FreeSpaceOnlyAbovePhysmemEnd_ReturnsErange()
    {
        var tree = ResourceTree.Boot(48, (1UL << 47) - 1, 8 * GiB, [new PhysicalRange(8 * GiB, (1UL << 47) - 8 * GiB)]);
        Assert.Equal(Errno.ERANGE, tree.RequestFreeMemRegion(256 * MiB, "dmirror", out _));
    }

    [Fact]
    public void RequestFreeMemRegion_Arm64_PlacedBelowPhysmemEnd()
    {
        var tree = ResourceTree.Boot(48, (1UL << 47) - 1, 8 * GiB, [new PhysicalRange(8 * GiB, (1UL << 46) - 8 * GiB)]);
        Assert.Equal(Errno.None, tree.RequestFreeMemRegion(256 * MiB, "dmirror", out var res));
        Assert.Equal((1UL << 47) - 256 * MiB, res!.Start);
        Assert.Equal((1UL << 47) - 1, res.End);
    }

    [Fact]
    public void GetFreeMemRegion_RoundsSizeUpToAlignment()
    {
        var tree = X86(46, 8 * GiB);
        Assert.Equal(Errno.None, tree.GetFreeMemRegion(100 * MiB, GiB, "x", IoResDesc.DevicePrivateMemory,
            GfrFlags.Descending | GfrFlags.RequestRegion, out var res));
        Assert.Equal((1UL << 46) - GiB, res!.Start);
        Assert.Equal(GiB, res.Size);
    }

    [Fact]
    public void RequestFreeMemRegion_UnalignedSize_RoundedToSection()
    {
        var tree = X86(46, 8 * GiB);
        tree.RequestFreeMemRegion(1, "tiny", out var res);
        Assert.Equal(128 * MiB, res!.Size);
    }

    [Fact]
    public void RequestFreeMemRegion_SizeLargerThanSpace_ReturnsErange()
    {
        var tree = X86(43, 8 * GiB);
        Assert.Equal(Errno.ERANGE, tree.RequestFreeMemRegion(1UL << 44, "huge", out _));
    }

    [Fact]
    public void RequestFreeMemRegion_SizeZero_ReturnsErange()
    {
        // size 0 stays 0 after ALIGN; the candidate's end is start - 1, so __request_region
        // refuses it and get_free_mem_region gives up with -ERANGE.
        var tree = X86(46, 8 * GiB);
        Assert.Equal(Errno.ERANGE, tree.RequestFreeMemRegion(0, "empty", out _));
        Assert.Single(tree.TopLevel);
    }

    [Fact]
    public void RequestFreeMemRegion_AfterRelease_ReusesTheSameRange()
    {
        var tree = X86(46, 8 * GiB);
        tree.RequestFreeMemRegion(256 * MiB, "a", out var a);
        Assert.Equal(Errno.None, tree.ReleaseRegion(a!.Start, a.Size));
        tree.RequestFreeMemRegion(256 * MiB, "b", out var b);
        Assert.Equal(a.Start, b!.Start);
    }

    [Fact]
    public void RequestFreeMemRegion_SkipsANonBusyWindowAtTheTop()
    {
        var tree = X86(40, 8 * GiB, new PhysicalRange((1UL << 40) - 64 * GiB, 64 * GiB));
        tree.RequestFreeMemRegion(256 * MiB, "dmirror", out var res);
        Assert.Equal((1UL << 40) - 64 * GiB - 256 * MiB, res!.Start);
    }

    [Fact]
    public void AllocFreeMemRegion_AscendingInsideWindow_InsertsNonBusyChild()
    {
        var tree = X86(46, 8 * GiB, new PhysicalRange(16 * GiB, 16 * GiB));
        var window = tree.TopLevel.Single(r => r.Name == ResourceTree.PciBusName);
        Assert.Equal(Errno.None, tree.AllocFreeMemRegion(window, 256 * MiB, 256 * MiB, "region0", out var res));
        Assert.Equal(16 * GiB, res!.Start);
        Assert.Same(window, res.Parent);
        Assert.False(res.IsBusy);
    }

    [Fact]
    public void ProcIomem_SmallTree_MatchesKernelFormat()
    {
        var tree = X86(46, 8 * GiB, new PhysicalRange(8 * GiB, 8 * GiB));
        tree.RequestRegion(8 * GiB, MiB, "0000:00:02.0", IoResourceFlags.None, out _);
        tree.RequestFreeMemRegion(256 * MiB, "dmirror", out _);
        const string expected =
            "00000000-1ffffffff : System RAM\n" +
            "200000000-3ffffffff : PCI Bus 0000:00\n" +
            "  200000000-2000fffff : 0000:00:02.0\n" +
            "3ffff0000000-3fffffffffff : dmirror\n";
        Assert.Equal(expected, tree.ProcIomem());
    }

    [Fact]
    public void ProcIomem_RootBelow64K_UsesWidthFour()
    {
        var tree = new ResourceTree(16, 0xffff);
        tree.RequestResource(tree.Root, new HmmSim.Kernel.Resource("a", 0x10, 0x1f, IoResourceFlags.Mem));
        Assert.Equal("0010-001f : a\n", tree.ProcIomem());
    }

    [Fact]
    public void WalkIomemResDesc_FindsDevicePrivateRegions()
    {
        var tree = X86(46, 8 * GiB);
        tree.RequestFreeMemRegion(256 * MiB, "a", out var a);
        var seen = new List<ulong>();
        var ret = tree.WalkIomemResDesc(IoResDesc.DevicePrivateMemory, IoResourceFlags.Mem | IoResourceFlags.Busy,
            0, ulong.MaxValue, r => { seen.Add(r.Start); return 0; });
        Assert.Equal(0, ret);
        Assert.Equal(new[] { a!.Start }, seen);
    }

    [Fact]
    public void RegionIntersects_SystemRamRange_Intersects()
    {
        var tree = X86(46, 8 * GiB);
        Assert.Equal(RegionIntersection.Intersects, tree.RegionIntersects(0, GiB, IoResourceFlags.SystemRam, IoResDesc.None));
        Assert.Equal(RegionIntersection.Disjoint, tree.RegionIntersects(16 * GiB, GiB, IoResourceFlags.SystemRam, IoResDesc.None));
    }

    [Fact]
    public void Boot_WindowOverlappingRam_Throws()
    {
        Assert.Throws<ArgumentException>(() => X86(46, 8 * GiB, new PhysicalRange(4 * GiB, 8 * GiB)));
    }

    [Fact]
    public void Boot_OverlappingWindows_Throws()
    {
        Assert.Throws<ArgumentException>(() => X86(46, 8 * GiB,
            new PhysicalRange(16 * GiB, 8 * GiB), new PhysicalRange(20 * GiB, 8 * GiB)));
    }

    [Fact]
    public void Boot_WindowBeyondAddressSpace_Throws()
    {
        Assert.Throws<ArgumentException>(() => X86(43, 8 * GiB, new PhysicalRange((1UL << 43) - GiB, 2 * GiB)));
    }
}
