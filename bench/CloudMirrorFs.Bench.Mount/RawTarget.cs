using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>A plain folder on the site's file system: the ceiling.</summary>
internal sealed class RawTarget(string dir) : BenchTarget
{
    public override string Name => "raw";

    public override string WorkPath { get; } = Path.Combine(dir, "work");

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Directory.CreateDirectory(WorkPath);
        return Task.CompletedTask;
    }

    public override Task StopAsync() => Task.CompletedTask;

    public override JsonObject Describe() => new() { ["kind"] = "plain folder", ["path"] = WorkPath };
}
