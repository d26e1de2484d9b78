namespace HmmSim.Kernel.Tests.Mm;

/// <summary>__folio_add_anon_rmap's VM_WARN_ON_FOLIO: a page may be PageAnonExclusive only while one
/// page table maps it. This is what catches v1 of the device-private migration swap types, where
/// remove_migration_pte restores a page shared by parent and child as exclusive.</summary>
public class AnonExclusiveWarningTests
{
    private static (Machine Machine, Vma Vma, Folio Folio, ulong Addr) SharedAnonPage(bool checks)
    {
        var (machine, vma, folio, a) = DebugVmWarningTests.AnonPage(checks);
        Rmap.FolioAddNewAnonRmap(folio, vma, a, pmdMapped: false);
        // fork's folio_try_dup_anon_rmap_pte: the page stops being exclusive, and a second PTE maps it.
        folio.Page().Desc.Flags &= ~(uint)PageFlags.AnonExclusive;
        Rmap.FolioDupRmapPtes(folio, folio.Page(), 1, machine.Kernel);
        return (machine, vma, folio, a);
    }

    [Fact]
    public void AddingAnExclusiveMappingOfAPageMappedTwiceWarns()
    {
        var (machine, vma, folio, _) = SharedAnonPage(checks: false);
        Rmap.FolioAddAnonRmapPtes(folio, folio.Page(), 1, vma, exclusive: true);
        Assert.Contains(machine.Dmesg(), l => l.Contains("WARNING: VM_WARN_ON_FOLIO", StringComparison.Ordinal) && l.Contains("__folio_add_anon_rmap", StringComparison.Ordinal));
    }

    [Fact]
    public void WithTheCheckerOnTheWarningIsAKernelBug()
    {
        var (_, vma, folio, _) = SharedAnonPage(checks: true);
        Assert.Throws<KernelBugException>(() => Rmap.FolioAddAnonRmapPtes(folio, folio.Page(), 1, vma, exclusive: true));
    }

    [Fact]
    public void ASharedMappingAddedWithoutExclusiveDoesNotWarn()
    {
        var (machine, vma, folio, _) = SharedAnonPage(checks: false);
        Rmap.FolioAddAnonRmapPtes(folio, folio.Page(), 1, vma, exclusive: false);
        Assert.DoesNotContain(machine.Dmesg(), l => l.Contains("VM_WARN_ON_FOLIO", StringComparison.Ordinal));
    }
}
