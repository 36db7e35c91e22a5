using System.Text.Json;
using System.Text.Json.Serialization;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Host.Control;

/// <summary>One request over the control socket (one JSON line).</summary>
internal sealed record ControlRequest
{
    /// <summary>status, drain, resync, verify, facet-replace.</summary>
    public required string Verb { get; init; }

    /// <summary>drain: seconds to wait.</summary>
    public double TimeoutSeconds { get; init; }

    /// <summary>resync: the facet.</summary>
    public string? Facet { get; init; }

    /// <summary>resync: every block, not only the dirty ones.</summary>
    public bool Full { get; init; }

    /// <summary>verify: rewrite what differs from a Synchronised facet.</summary>
    public bool Repair { get; init; }

    /// <summary>facet-replace: the config file that now names the facet's new disk.</summary>
    public string? ConfigPath { get; init; }
}

/// <summary>One answer over the control socket (one JSON line).</summary>
internal sealed record ControlResponse
{
    /// <summary>The verb's exit code (0, 1 or 2).</summary>
    public int ExitCode { get; init; }

    /// <summary>A message for stderr when the verb failed.</summary>
    public string? Error { get; init; }

    /// <summary>The volume's status after the verb.</summary>
    public VolumeStatus? Status { get; init; }

    /// <summary>verify: what it found.</summary>
    public VerifyReport? Verify { get; init; }
}

/// <summary>The wire format shared by server and client.</summary>
internal static class ControlJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };
}
