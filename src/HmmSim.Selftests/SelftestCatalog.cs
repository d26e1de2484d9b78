using System.Reflection;

namespace HmmSim.Selftests;

/// <summary>One ported selftest case: a TEST_F of a fixture, for one variant, under one design.
/// <see cref="Name"/> is what `hmmsim selftest` prints: Design.fixture.variant.test.</summary>
public sealed record SelftestCase(string Fixture, string Variant, string Test, DevicePrivateDesign Design, Action Run)
{
    public string Name => $"{Design}.{Fixture}.{Variant}.{Test}";
}

/// <summary>Every ported case of hmm-tests.c, in the file's order, for both designs.</summary>
public static class SelftestCatalog
{
    private static readonly Lazy<IReadOnlyList<SelftestCase>> _all = new(Build);

    public static IReadOnlyList<SelftestCase> All => _all.Value;

    /// <summary>Runs <paramref name="c"/> with its machines booted under <paramref name="variants"/> (a
    /// DeviceAddressSpace case; today's design has no variants to switch).</summary>
    public static void RunWith(SelftestCase c, DesignVariants variants)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(variants);
        if (c.Design != DevicePrivateDesign.DeviceAddressSpace && !variants.IsDefault)
            throw new ArgumentException($"{c.Name}: design variants apply to DeviceAddressSpace cases only", nameof(c));
        var old = HmmFixture.AmbientVariants.Value;
        HmmFixture.AmbientVariants.Value = variants;
        try
        {
            c.Run();
        }
        finally
        {
            HmmFixture.AmbientVariants.Value = old;
        }
    }

    public static SelftestCase Find(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no selftest case named '{name}'", nameof(name));

    private static IReadOnlyList<SelftestCase> Build()
    {
        var cases = new List<SelftestCase>();
        foreach (var design in new[] { DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace })
        {
            Add(cases, "hmm", typeof(HmmTests), HmmFixture.HmmVariants, design);
            Add(cases, "hmm2", typeof(Hmm2Tests), HmmFixture.Hmm2Variants, design);
        }
        return cases;
    }

    private static void Add(List<SelftestCase> cases, string fixture, Type type, IReadOnlyList<string> variants, DevicePrivateDesign design)
    {
        // TEST_F order: the methods as declared, those taking (variant, design).
        var tests = type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => m.GetParameters() is [{ ParameterType: var a }, { ParameterType: var b }] && a == typeof(string) && b == typeof(DevicePrivateDesign))
            .OrderBy(m => m.MetadataToken)
            .ToList();
        foreach (var variant in variants)
        {
            foreach (var m in tests)
            {
                var method = m;
                cases.Add(new SelftestCase(fixture, variant, method.Name, design, () =>
                {
                    var instance = Activator.CreateInstance(type)!;
                    try
                    {
                        method.Invoke(instance, [variant, design]);
                    }
                    catch (TargetInvocationException e) when (e.InnerException is not null)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
                    }
                }));
            }
        }
    }
}
