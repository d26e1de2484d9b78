using ArchBase = HmmSim.Kernel.Arch;

namespace HmmSim.Kernel.Tests.Arch;

public class SwapRoundTripTests
{
    [Flags]
    public enum SwpBits { None = 0, SoftDirty = 1, Exclusive = 2, UffdWp = 4, All = 7 }

    public static TheoryData<HmmSim.Architecture, uint, ulong, SwpBits> Cases()
    {
        var data = new TheoryData<HmmSim.Architecture, uint, ulong, SwpBits>();
        foreach (var arch in new[] { Architecture.X86_64, Architecture.Arm64 })
        {
            ulong maxPfn = (1UL << ArchBase.For(arch).SwpPfnBits) - 1;
            ulong migAd = maxPfn | (3UL << ArchBase.For(arch).SwpPfnBits);   // max PFN with young and dirty
            for (uint type = 0; type < 32; type++)
                foreach (ulong offset in new[] { 0UL, 1UL, maxPfn, migAd })
                    foreach (var bits in new[] { SwpBits.None, SwpBits.SoftDirty, SwpBits.Exclusive, SwpBits.UffdWp, SwpBits.All })
                        data.Add((HmmSim.Architecture)arch, type, offset, bits);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PteFormRoundTripsBitExactWithSoftwareBits(HmmSim.Architecture kind, uint type, ulong offset, SwpBits bits)
    {
        var arch = ArchBase.For((Architecture)kind);
        var entry = SwapEntry.Make(type, offset);
        ulong pte = arch.SwpEntryToPte(entry);
        if (bits.HasFlag(SwpBits.SoftDirty)) pte = arch.PteSwpMksoftDirty(pte);
        if (bits.HasFlag(SwpBits.Exclusive)) pte = arch.PteSwpMkexclusive(pte);
        if (bits.HasFlag(SwpBits.UffdWp)) pte = arch.PteSwpMkuffdWp(pte);

        Assert.Equal(entry, arch.PteToSwpEntry(pte));
        Assert.False(arch.PtePresent(pte));
        Assert.Equal(bits.HasFlag(SwpBits.Exclusive), arch.PteSwpExclusive(pte));
        Assert.Equal(bits.HasFlag(SwpBits.UffdWp), arch.PteSwpUffdWp(pte));
        // arm64 has no soft-dirty: the bit is never recorded there.
        Assert.Equal(bits.HasFlag(SwpBits.SoftDirty) && kind == HmmSim.Architecture.X86_64, arch.PteSwpSoftDirty(pte));
        Assert.Equal(entry, arch.PteToSwpEntry(arch.PteSwpClearExclusive(pte)));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PmdFormRoundTripsBitExactWithSoftwareBits(HmmSim.Architecture kind, uint type, ulong offset, SwpBits bits)
    {
        var arch = ArchBase.For((Architecture)kind);
        var entry = SwapEntry.Make(type, offset);
        ulong pmd = arch.SwpEntryToPmd(entry);
        if (bits.HasFlag(SwpBits.SoftDirty)) pmd = arch.PmdSwpMksoftDirty(pmd);
        if (bits.HasFlag(SwpBits.Exclusive)) pmd = arch.PmdSwpMkexclusive(pmd);
        if (bits.HasFlag(SwpBits.UffdWp)) pmd = arch.PmdSwpMkuffdWp(pmd);

        Assert.Equal(entry, arch.PmdToSwpEntry(pmd));
        Assert.False(arch.PmdPresent(pmd));
        Assert.False(arch.PmdLeaf(pmd));
        Assert.Equal(bits.HasFlag(SwpBits.Exclusive), arch.PmdSwpExclusive(pmd));
        Assert.Equal(bits.HasFlag(SwpBits.UffdWp), arch.PmdSwpUffdWp(pmd));
        Assert.Equal(bits.HasFlag(SwpBits.SoftDirty) && kind == HmmSim.Architecture.X86_64, arch.PmdSwpSoftDirty(pmd));
    }
}
