namespace HmmSim.Kernel.Tests.Mm;

/// <summary>The DEBUG_VM checks at the kernel's places (rmap sanity checks, folio_add_new_anon_rmap,
/// __folio_add_file_rmap, softleaf_to_folio, zone_device_page_init, free_zone_device_folio,
/// __split_huge_pmd_locked): each provoked through the internal call, seen in dmesg with the checker
/// off and as a KernelBugException with it on.</summary>
public class DebugVmWarningTests
{
    private const ulong Mib = 1UL << 20;

    /// <summary>A one-page private anonymous VMA with its anon_vma, and a fresh, unmapped order-0 folio.</summary>
    internal static (Machine Machine, Vma Vma, Folio Folio, ulong Addr) AnonPage(bool checks)
    {
        var machine = new Machine(new MachineConfig { CheckInvariants = checks });
        var p = machine.CreateProcess();
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, 4096, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong a));
        var vma = p.Mm.Vmas.Lookup(a)!;
        Memory.AnonVmaPrepare(vma);
        var folio = Memory.AllocUserFolio(machine.Kernel, 0)!.Value;
        return (machine, vma, folio, a);
    }

    private static void AssertWarned(Machine machine, string macro, string function) =>
        Assert.Contains(machine.Dmesg(), l => l.StartsWith("WARNING: ", StringComparison.Ordinal)
            && l.Contains(macro, StringComparison.Ordinal) && l.Contains(function, StringComparison.Ordinal));

    private static void AssertBug(Action action, string macro)
    {
        var ex = Assert.Throws<KernelBugException>(action);
        Assert.Contains(macro, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MappingAnAnonFolioAsFileWarns()
    {
        var (machine, vma, folio, a) = AnonPage(checks: false);
        Rmap.FolioAddNewAnonRmap(folio, vma, a, pmdMapped: false);
        Rmap.FolioAddFileRmapPtes(folio, folio.Page(), 1, vma);
        AssertWarned(machine, "VM_WARN_ON_FOLIO(folio_test_anon)", "__folio_add_file_rmap");
        Assert.Equal(2, folio.MapCount);
    }

    [Fact]
    public void MappingAnAnonFolioAsFileIsABugWithTheChecker()
    {
        var (_, vma, folio, a) = AnonPage(checks: true);
        Rmap.FolioAddNewAnonRmap(folio, vma, a, pmdMapped: false);
        AssertBug(() => Rmap.FolioAddFileRmapPtes(folio, folio.Page(), 1, vma), "VM_WARN_ON_FOLIO(folio_test_anon)");
    }

    [Fact]
    public void RemovingNoPagesWarnsInTheSanityChecks()
    {
        var (machine, vma, folio, a) = AnonPage(checks: false);
        Rmap.FolioAddNewAnonRmap(folio, vma, a, pmdMapped: false);
        Rmap.FolioRemoveRmapPtes(folio, folio.Page(), 0, vma);
        AssertWarned(machine, "VM_WARN_ON_ONCE(nr_pages <= 0)", "__folio_remove_rmap");
        Assert.Equal(1, folio.MapCount);
    }

    [Fact]
    public void RemovingAPageOfAnotherFolioIsABugWithTheChecker()
    {
        var (machine, vma, folio, a) = AnonPage(checks: true);
        Rmap.FolioAddNewAnonRmap(folio, vma, a, pmdMapped: false);
        var other = Memory.AllocUserFolio(machine.Kernel, 0)!.Value;
        AssertBug(() => Rmap.FolioRemoveRmapPtes(folio, other.Page(), 1, vma), "VM_WARN_ON_FOLIO(page_folio(page) != folio)");
    }

    [Fact]
    public void ANewAnonFolioOutsideItsVmaWarns()
    {
        var (machine, vma, folio, _) = AnonPage(checks: false);
        Rmap.FolioAddNewAnonRmap(folio, vma, vma.End, pmdMapped: false);
        AssertWarned(machine, "VM_WARN_ON_ONCE(address < vm_start || address + nr pages > vm_end)", "folio_add_new_anon_rmap");
    }

    [Fact]
    public void ANewAnonFolioInsideItsVmaDoesNotWarn()
    {
        var (machine, vma, folio, a) = AnonPage(checks: true);
        Rmap.FolioAddNewAnonRmap(folio, vma, a, pmdMapped: false);
        Rmap.FolioRemoveRmapPtes(folio, folio.Page(), 1, vma);
        Assert.DoesNotContain(machine.Dmesg(), l => l.StartsWith("WARNING: ", StringComparison.Ordinal));
    }

    [Fact]
    public void UsingAMigrationEntryOfAnUnlockedFolioWarns()
    {
        var (machine, _, folio, _) = AnonPage(checks: false);
        var sw = machine.Kernel.Swapops;
        var entry = sw.MakeReadableMigrationEntryFromPage(folio.Page());
        Assert.Equal(folio, sw.SoftleafToFolio(entry));
        AssertWarned(machine, "VM_WARN_ON_ONCE(softleaf_is_migration && !folio_test_locked)", "softleaf_to_folio");
    }

    [Fact]
    public void UsingAMigrationEntryOfALockedFolioDoesNotWarnAndUnlockedIsABugWithTheChecker()
    {
        var (machine, _, folio, _) = AnonPage(checks: true);
        var sw = machine.Kernel.Swapops;
        var entry = sw.MakeWritableMigrationEntryFromPage(folio.Page());
        folio.Lock();
        Assert.Equal(folio.Page(), sw.SoftleafToPage(entry));
        folio.Unlock();
        AssertBug(() => sw.SoftleafToPage(entry), "VM_WARN_ON_ONCE(softleaf_is_migration && !PageLocked)");
    }

    private static DevPagemap PrivatePgmap() =>
        new(MemoryType.DevicePrivate, new object(), new DevPagemapOps { FolioFree = _ => { }, MigrateToRam = _ => VmFaultResult.None });

    [Fact]
    public void HandingOutADevicePageThatStillHasAReferenceWarns()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "dev"));
        var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 3);
        var folio = HmmSim.Kernel.Memremap.ZoneDevicePageInit(page);
        folio.Unlock();
        // Handed out again while the first user still holds it.
        HmmSim.Kernel.Memremap.ZoneDevicePageInit(page);
        AssertWarned(m, "VM_WARN_ON_FOLIO(folio_ref_count)", "zone_device_page_init");
    }

    [Fact]
    public void HandingOutADevicePageThatStillHasAReferenceIsABugWithTheChecker()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = true });
        var pgmap = PrivatePgmap();
        Assert.Equal(Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256 * Mib, "dev"));
        var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 3);
        var folio = HmmSim.Kernel.Memremap.ZoneDevicePageInit(page);
        folio.Unlock();
        AssertBug(() => HmmSim.Kernel.Memremap.ZoneDevicePageInit(page), "VM_WARN_ON_FOLIO(folio_ref_count)");
        folio.Put();
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void FreeingAFolioWithoutAPgmapAsZoneDeviceWarnsAndLeavesIt()
    {
        var (machine, _, folio, _) = AnonPage(checks: false);
        HmmSim.Kernel.Memremap.FreeZoneDeviceFolio(folio);
        AssertWarned(machine, "WARN_ON_ONCE(!pgmap)", "free_zone_device_folio");
        Assert.Equal(1, folio.RefCount);
        var (_, _, checkedFolio, _) = AnonPage(checks: true);
        AssertBug(() => HmmSim.Kernel.Memremap.FreeZoneDeviceFolio(checkedFolio), "WARN_ON_ONCE(!pgmap)");
    }

    [Fact]
    public void SplittingAHugePmdAtAnUnalignedAddressIsABug()
    {
        using var machine = new Machine(new MachineConfig { CheckInvariants = false });
        using var p = machine.CreateProcess();
        ulong haddr = HmmSim.Tests.Mm.MmTestHelpers.MapThp(p);
        // A PMD-mapped THP at haddr, so the split reaches __split_huge_pmd_locked's checks.
        p.WriteInt32(haddr, 1);
        var vma = p.Mm.Vmas.Lookup(haddr)!;
        Assert.True(p.Mm.PmdTable(haddr, alloc: false, out var pmdTable));
        Assert.False(machine.Kernel.Arch.IsTable(p.Mm.PmdRef(pmdTable, haddr)));
        AssertBug(() => HugeMemory.SplitHugePmd(vma, pmdTable, haddr + 4096), "VM_BUG_ON(haddr & ~HPAGE_PMD_MASK)");
    }
}
