using System.Reflection;
using System.Runtime.CompilerServices;
using NetArchTest.Rules;

namespace HmmSim.Architecture.Tests;

/// <summary>EXPORT_SYMBOL made real: a driver module is compiled against the kernel's public surface
/// alone, and that surface is the exported API, in namespace HmmSim.Kernel.</summary>
public sealed class BoundaryTests
{
    private static readonly Assembly _kernel = typeof(HmmSim.Kernel.KernelState).Assembly;
    private static readonly Assembly _testHmm = Assembly.Load("HmmSim.Drivers.TestHmm");
    private static readonly Assembly _gpuSimDriver = typeof(GpuSim.GpuDevice).Assembly;

    public static TheoryData<string> Drivers => new() { "HmmSim.Drivers.TestHmm", "GpuSim" };

    [Theory]
    [MemberData(nameof(Drivers))]
    public void TheKernelGrantsNoDriverItsInternals(string driver)
    {
        var friends = _kernel.GetCustomAttributes<InternalsVisibleToAttribute>().Select(a => a.AssemblyName).ToList();
        Assert.DoesNotContain(driver, friends);
        Assert.Equal(["HmmSim", "HmmSim.Benchmarks", "HmmSim.Tests"], friends.Order());
    }

    [Theory]
    [MemberData(nameof(Drivers))]
    public void ADriverReferencesOnlyTheKernel(string driver)
    {
        var asm = driver == "GpuSim" ? _gpuSimDriver : _testHmm;
        var ours = asm.GetReferencedAssemblies().Select(a => a.Name!).Where(n => n.StartsWith("HmmSim", StringComparison.Ordinal)).ToList();
        Assert.Equal(["HmmSim.Kernel"], ours);
        var result = Types.InAssembly(asm).ShouldNot().HaveDependencyOnAny("HmmSim.Cli", "HmmSim.Selftests").GetResult();
        Assert.True(result.IsSuccessful);
    }

    [Fact]
    public void EveryPublicKernelTypeIsInNamespaceHmmSimKernel()
    {
        var result = Types.InAssembly(_kernel).That().ArePublic().Should().ResideInNamespace("HmmSim.Kernel").GetResult();
        Assert.True(result.IsSuccessful);
        Assert.All(_kernel.GetExportedTypes(), t => Assert.Equal("HmmSim.Kernel", t.Namespace));
    }

    [Fact]
    public void TheKernelApiDocListsEveryExportedType()
    {
        var doc = File.ReadAllText(Path.Combine(LayerTests.KernelSourceDir(), "..", "..", "docs", "kernel-api.md"));
        var missing = _kernel.GetExportedTypes().Where(t => !t.IsNested)
            .Select(t => t.Name.Split('`')[0]).Where(n => !doc.Contains($"`{n}`", StringComparison.Ordinal)).ToList();
        Assert.Empty(missing);
    }
}
