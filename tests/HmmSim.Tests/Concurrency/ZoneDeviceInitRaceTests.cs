namespace HmmSim.Tests.Concurrency;

/// <summary>zone_device_folio_init racing migrate_device_range (a driver allocating a device page while
/// another handle's close evicts the device): the count is set, then the page is locked as lock_page
/// does. An eviction that takes the page in between holds its lock, and the allocation waits for it;
/// the two never hold the lock together. Seen under stress as a "folio_unlock of unlocked folio" in the
/// eviction's finalize, when the allocation set the lock bit without waiting.</summary>
public class ZoneDeviceInitRaceTests
{
    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void AnAllocationWaitsForAnEvictionThatTookThePageFirst(DevicePrivateDesign design)
    {
        int waited = 0;
        for (int seed = 0; seed < 16; seed++)
        {
            using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
            var freed = new List<HmmSim.Kernel.Folio>();
            var pgmap = new DevPagemap(MemoryType.DevicePrivate, this, new DevPagemapOps { FolioFree = freed.Add, MigrateToRam = _ => VmFaultResult.None });
            Assert.Equal(HmmSim.Kernel.Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256UL << 20, "test"));
            var page = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 0);
            bool evictionHolds = false, bothHeld = false, evictionTookIt = false;
            HmmSim.Kernel.Folio allocated = default;
            using var s = new DeterministicScheduler(seed);
            var errors = s.Run(TimeSpan.FromSeconds(60),
                () =>
                {
                    allocated = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(page, 0);
                    bothHeld |= evictionHolds;
                },
                () =>
                {
                    // migrate_device_pfn_lock: a reference unless the count is 0, then folio_trylock.
                    for (int tries = 0; tries < 8; tries++)
                    {
                        s.Point("evict");
                        var folio = page.Folio;
                        if (!folio.TryGet())
                            continue;
                        if (folio.TryLock())
                        {
                            evictionTookIt = evictionHolds = true;
                            s.Point("evicting");
                            evictionHolds = false;
                            folio.Unlock();
                        }
                        folio.Put();
                        return;
                    }
                });
            Assert.All(errors, Assert.Null);
            Assert.False(bothHeld, $"seed {seed}: the allocation returned with the page locked while the eviction held it");
            // The allocation ends with its own reference and the lock, whichever ran first.
            Assert.True(allocated.IsLocked);
            Assert.Equal(1, allocated.RefCount);
            if (evictionTookIt && s.Trace.Contains("t0 blocked on folio_lock"))
                waited++;
            allocated.Unlock();
            allocated.Put();
            Assert.Single(freed);
        }
        Assert.True(waited > 0, "no seed had the allocation wait for an eviction that took the page between its count and its lock");
    }
}
