using ArchBase = HmmSim.Kernel.Arch;

namespace HmmSim.Kernel.Tests.Arch;

public class X86_64ArchTests
{
    private static readonly ArchBase _x86 = ArchBase.For(Architecture.X86_64);
    private const ulong Nx = 1UL << 63;

    [Fact]
    public void SwapPteForType28Offset0x1234HasTheExactKernelBits()
    {
        // type in bits 59..63, ~offset in bits 9..58 (pgtable_64.h __swp_entry).
        Assert.Equal(0xe7ffffffffdb9600UL, _x86.SwpEntryToPte(SwapEntry.Make(28, 0x1234)));
    }

    [Fact]
    public void SwapPteForType0Offset0IsAllInvertedOffsetBits()
    {
        Assert.Equal(0x07fffffffffffe00UL, _x86.SwpEntryToPte(SwapEntry.Make(0, 0)));
    }

    [Fact]
    public void SwapPteForType31Offset1HasOnlyTheLowOffsetBitClear()
    {
        Assert.Equal(0xfffffffffffffc00UL, _x86.SwpEntryToPte(SwapEntry.Make(31, 1)));
    }

    [Fact]
    public void SwapSoftwareBitsAreRwUserAndPwt()
    {
        ulong pte = _x86.SwpEntryToPte(SwapEntry.Make(28, 0x1234));
        Assert.Equal(pte | 0x2, _x86.PteSwpMksoftDirty(pte));
        Assert.Equal(pte | 0x4, _x86.PteSwpMkuffdWp(pte));
        Assert.Equal(pte | 0x8, _x86.PteSwpMkexclusive(pte));
    }

    [Fact]
    public void PfnPteWithPageSharedIsPfnShiftedOrProt()
    {
        ulong pte = _x86.PfnPte(new Pfn(0x12345), _x86.VmGetPageProt(VmFlags.Read | VmFlags.Write | VmFlags.Shared));
        Assert.Equal(0x8000000012345027UL, pte);
        Assert.Equal(new Pfn(0x12345), _x86.PtePfn(pte));
        Assert.True(_x86.PtePresent(pte));
        Assert.False(_x86.PteProtNone(pte));
    }

    [Fact]
    public void DirtyYoungAndWriteHelpersFlipTheirBits()
    {
        ulong pte = _x86.PfnPte(new Pfn(0x42), 0x25UL | Nx);
        Assert.False(_x86.PteWrite(pte));
        Assert.True(_x86.PteWrite(_x86.PteMkwrite(pte)));
        Assert.False(_x86.PteWrite(_x86.PteWrprotect(_x86.PteMkwrite(pte))));
        ulong dirty = _x86.PteMkdirty(pte);
        Assert.True(_x86.PteDirty(dirty));
        Assert.True(_x86.PteSoftDirty(dirty));   // x86 pte_mkdirty also sets _PAGE_SOFT_DIRTY
        Assert.False(_x86.PteDirty(_x86.PteMkclean(dirty)));
        Assert.False(_x86.PteYoung(_x86.PteMkold(pte)));
        Assert.True(_x86.PteYoung(_x86.PteMkyoung(_x86.PteMkold(pte))));
        Assert.Equal(new Pfn(0x42), _x86.PtePfn(_x86.PteMkclean(_x86.PteWrprotect(dirty))));
    }

    [Fact]
    public void PteModifyKeepsPfnDirtyAndAccessedAndTakesTheNewProtection()
    {
        ulong pte = _x86.PteMkdirty(_x86.PfnPte(new Pfn(0x777), 0x27UL | Nx));
        ulong ro = _x86.PteModify(pte, 0x25UL | Nx);
        Assert.Equal(new Pfn(0x777), _x86.PtePfn(ro));
        Assert.True(_x86.PteDirty(ro));
        Assert.True(_x86.PteYoung(ro));
        Assert.False(_x86.PteWrite(ro));
    }

    [Fact]
    public void ProtNonePteIsPresentButNotHardwarePresentAndKeepsItsPfnInverted()
    {
        ulong pte = _x86.PfnPte(new Pfn(0x1234), _x86.VmGetPageProt(VmFlags.None));
        Assert.Equal(0x000ffffffedcb120UL, pte);   // L1TF: PFN bits inverted, PROTNONE|ACCESSED
        Assert.True(_x86.PtePresent(pte));
        Assert.True(_x86.PteProtNone(pte));
        Assert.Equal(0UL, pte & 1);
        Assert.Equal(new Pfn(0x1234), _x86.PtePfn(pte));
    }

    [Fact]
    public void PteModifyBetweenProtNoneAndReadableFlipsThePfnInversion()
    {
        ulong none = _x86.PfnPte(new Pfn(0x1234), _x86.VmGetPageProt(VmFlags.None));
        ulong ro = _x86.PteModify(none, _x86.VmGetPageProt(VmFlags.Read));
        Assert.Equal(0x8000000001234025UL, ro);
        Assert.Equal(none, _x86.PteModify(ro, _x86.VmGetPageProt(VmFlags.None)));
    }

    [Theory]
    [InlineData(VmFlags.None, 0x120UL)]
    [InlineData(VmFlags.Read, 0x8000000000000025UL)]
    [InlineData(VmFlags.Write, 0x8000000000000025UL)]
    [InlineData(VmFlags.Read | VmFlags.Write, 0x8000000000000025UL)]
    [InlineData(VmFlags.Exec, 0x25UL)]
    [InlineData(VmFlags.Exec | VmFlags.Read, 0x25UL)]
    [InlineData(VmFlags.Exec | VmFlags.Write, 0x25UL)]
    [InlineData(VmFlags.Exec | VmFlags.Write | VmFlags.Read, 0x25UL)]
    [InlineData(VmFlags.Shared, 0x120UL)]
    [InlineData(VmFlags.Shared | VmFlags.Read, 0x8000000000000025UL)]
    [InlineData(VmFlags.Shared | VmFlags.Write, 0x8000000000000027UL)]
    [InlineData(VmFlags.Shared | VmFlags.Write | VmFlags.Read, 0x8000000000000027UL)]
    [InlineData(VmFlags.Shared | VmFlags.Exec, 0x25UL)]
    [InlineData(VmFlags.Shared | VmFlags.Exec | VmFlags.Read, 0x25UL)]
    [InlineData(VmFlags.Shared | VmFlags.Exec | VmFlags.Write, 0x27UL)]
    [InlineData(VmFlags.Shared | VmFlags.Exec | VmFlags.Write | VmFlags.Read, 0x27UL)]
    public void VmGetPageProtMatchesProtectionMap(VmFlags flags, ulong expected)
    {
        Assert.Equal(expected, _x86.VmGetPageProt(flags | VmFlags.MayRead | VmFlags.MayWrite));
    }

    [Fact]
    public void HugePmdIsALeafWithPseAndKeepsItsPfn()
    {
        ulong pmd = _x86.PfnPmd(new Pfn(0x200), _x86.VmGetPageProt(VmFlags.Read));
        Assert.Equal(0x80000000002000a5UL, pmd);
        Assert.True(_x86.PmdLeaf(pmd));
        Assert.Equal(new Pfn(0x200), _x86.PmdPfn(pmd));
    }

    [Fact]
    public void TableEntryIsPageTableBitsWithTheTablePfnAndNotALeaf()
    {
        ulong e = _x86.MkTable(new Pfn(0x5555));
        Assert.Equal(0x5555067UL, e);
        Assert.True(_x86.IsTable(e));
        Assert.False(_x86.PmdLeaf(e));
        Assert.Equal(new Pfn(0x5555), _x86.TablePfn(e));
    }

    [Fact]
    public void MaxSwapfileSizeIsTwoToTheFifty()
    {
        Assert.Equal(1UL << 50, _x86.ArchMaxSwapfileSize);
    }
}
