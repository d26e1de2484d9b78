using ArchBase = HmmSim.Kernel.Arch;

namespace HmmSim.Kernel.Tests.Arch;

public class Arm64ArchTests
{
    private static readonly ArchBase _a64 = ArchBase.For(Architecture.Arm64);

    private const ulong PageNone = 0x0060000000000f82UL;
    private const ulong PageShared = 0x0068000000000fc3UL;
    private const ulong PageSharedExec = 0x0028000000000fc3UL;
    private const ulong PageReadonly = 0x0060000000000fc3UL;
    private const ulong PageReadonlyExec = 0x0020000000000fc3UL;

    [Fact]
    public void SwapPteForType28Offset0x1234HasTheExactKernelBits()
    {
        // type in bits 6..10, offset from bit 12.
        Assert.Equal(0x1234700UL, _a64.SwpEntryToPte(SwapEntry.Make(28, 0x1234)));
    }

    [Fact]
    public void SwapSoftwareBitsAreBit2ExclusiveAndBit3UffdWp()
    {
        ulong pte = _a64.SwpEntryToPte(SwapEntry.Make(28, 0x1234));
        Assert.Equal(pte | 0x4, _a64.PteSwpMkexclusive(pte));
        Assert.Equal(pte | 0x8, _a64.PteSwpMkuffdWp(pte));
    }

    [Fact]
    public void SoftDirtyIsNotSupported()
    {
        ulong pte = _a64.SwpEntryToPte(SwapEntry.Make(3, 7));
        Assert.Equal(pte, _a64.PteSwpMksoftDirty(pte));
        Assert.False(_a64.PteSwpSoftDirty(_a64.PteSwpMksoftDirty(pte)));
    }

    [Fact]
    public void PfnPteWithPageSharedIsCleanWritable()
    {
        ulong pte = _a64.PfnPte(new Pfn(0x1234), _a64.VmGetPageProt(VmFlags.Read | VmFlags.Write | VmFlags.Shared));
        Assert.Equal(0x0068000001234fc3UL, pte);
        Assert.Equal(new Pfn(0x1234), _a64.PtePfn(pte));
        Assert.True(_a64.PtePresent(pte));
        Assert.True(_a64.PteWrite(pte));
        Assert.False(_a64.PteDirty(pte));
    }

    [Fact]
    public void MkdirtyOnAWritablePteClearsRdonlyAndMkcleanSetsIt()
    {
        ulong pte = _a64.PfnPte(new Pfn(0x1234), PageShared);
        ulong dirty = _a64.PteMkdirty(pte);
        Assert.Equal(0x00e8000001234f43UL, dirty);
        Assert.True(_a64.PteDirty(dirty));
        Assert.Equal(pte, _a64.PteMkclean(dirty));
    }

    [Fact]
    public void WrprotectOfAHardwareDirtyPteKeepsItDirtyViaTheSoftwareBit()
    {
        ulong hwDirty = _a64.PteMkwrite(_a64.PfnPte(new Pfn(0x10), PageShared));
        Assert.True(_a64.PteDirty(hwDirty));
        ulong ro = _a64.PteWrprotect(hwDirty);
        Assert.False(_a64.PteWrite(ro));
        Assert.True(_a64.PteDirty(ro));
        Assert.Equal(1UL << 55, ro & (1UL << 55));
    }

    [Fact]
    public void YoungAndOldToggleTheAccessFlag()
    {
        ulong pte = _a64.PfnPte(new Pfn(0x10), PageReadonly);
        Assert.True(_a64.PteYoung(pte));
        Assert.False(_a64.PteYoung(_a64.PteMkold(pte)));
        Assert.True(_a64.PteYoung(_a64.PteMkyoung(_a64.PteMkold(pte))));
    }

    [Fact]
    public void PteModifyKeepsPfnDirtyAndAccessed()
    {
        ulong dirty = _a64.PteMkdirty(_a64.PfnPte(new Pfn(0x999), PageShared));
        ulong ro = _a64.PteModify(dirty, PageReadonly);
        Assert.Equal(new Pfn(0x999), _a64.PtePfn(ro));
        Assert.True(_a64.PteDirty(ro));
        Assert.True(_a64.PteYoung(ro));
        Assert.False(_a64.PteWrite(ro));
    }

    [Fact]
    public void ProtNonePteIsPresentInvalid()
    {
        ulong pte = _a64.PfnPte(new Pfn(0x1234), _a64.VmGetPageProt(VmFlags.None));
        Assert.Equal(0x0060000001234f82UL, pte);
        Assert.Equal(0UL, pte & 1);
        Assert.True(_a64.PtePresent(pte));
        Assert.True(_a64.PteProtNone(pte));
        Assert.Equal(new Pfn(0x1234), _a64.PtePfn(pte));
        Assert.False(_a64.PteProtNone(_a64.PteModify(pte, PageReadonly)));
    }

    [Theory]
    [InlineData(VmFlags.None, PageNone)]
    [InlineData(VmFlags.Read, PageReadonly)]
    [InlineData(VmFlags.Write, PageReadonly)]
    [InlineData(VmFlags.Read | VmFlags.Write, PageReadonly)]
    [InlineData(VmFlags.Exec, PageReadonlyExec)]
    [InlineData(VmFlags.Exec | VmFlags.Read, PageReadonlyExec)]
    [InlineData(VmFlags.Exec | VmFlags.Write, PageReadonlyExec)]
    [InlineData(VmFlags.Exec | VmFlags.Write | VmFlags.Read, PageReadonlyExec)]
    [InlineData(VmFlags.Shared, PageNone)]
    [InlineData(VmFlags.Shared | VmFlags.Read, PageReadonly)]
    [InlineData(VmFlags.Shared | VmFlags.Write, PageShared)]
    [InlineData(VmFlags.Shared | VmFlags.Write | VmFlags.Read, PageShared)]
    [InlineData(VmFlags.Shared | VmFlags.Exec, PageReadonlyExec)]
    [InlineData(VmFlags.Shared | VmFlags.Exec | VmFlags.Read, PageReadonlyExec)]
    [InlineData(VmFlags.Shared | VmFlags.Exec | VmFlags.Write, PageSharedExec)]
    [InlineData(VmFlags.Shared | VmFlags.Exec | VmFlags.Write | VmFlags.Read, PageSharedExec)]
    public void VmGetPageProtMatchesProtectionMap(VmFlags flags, ulong expected)
    {
        Assert.Equal(expected, _a64.VmGetPageProt(flags | VmFlags.MayRead));
    }

    [Fact]
    public void HugePmdIsABlockDescriptorWithTheTableBitClear()
    {
        ulong pmd = _a64.PfnPmd(new Pfn(0x200), PageReadonly);
        Assert.Equal(0x0060000000200fc1UL, pmd);
        Assert.True(_a64.PmdLeaf(pmd));
        Assert.False(_a64.IsTable(pmd));
        Assert.Equal(new Pfn(0x200), _a64.PmdPfn(pmd));
    }

    [Fact]
    public void TableEntryIsTypeTableAndNotALeaf()
    {
        ulong e = _a64.MkTable(new Pfn(0x5555));
        Assert.Equal(0x5555003UL, e);
        Assert.True(_a64.IsTable(e));
        Assert.False(_a64.PmdLeaf(e));
        Assert.Equal(new Pfn(0x5555), _a64.TablePfn(e));
    }

    [Fact]
    public void MaxSwapfileSizeIsTwoToTheFifty()
    {
        Assert.Equal(1UL << 50, _a64.ArchMaxSwapfileSize);
    }
}
