/**
 * Which BMC serves a node: the config mapping, the node's annotation or label (only hosts the site
 * allows: a node's kubelet can write its own annotations, and must not be able to send the BMC
 * credentials to a host of its choosing), the template; addresses parsed strictly; the `bmc`
 * config block validated and off by default.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aNode } from '../helpers/builders.js';
import { bmcSelector, parseBmcAddress, type BmcSelectionConfig } from '../../src/bmc/select.js';
import { ConfigSchema, defaultConfig } from '../../src/config/schema.js';

const BASE: BmcSelectionConfig = {
  enabled: true,
  defaultProtocol: 'ipmi',
  credentials: '',
  nodes: {},
  allowedAddresses: [],
};

describe('BMC addresses', () => {
  it('parses the forms the config and annotations use', () => {
    assert.deepEqual(parseBmcAddress('ipmi://10.1.2.3', 'ipmi'), {
      protocol: 'ipmi',
      host: '10.1.2.3',
    });
    assert.deepEqual(parseBmcAddress('ipmi://bmc-7.mgmt:6230', 'ipmi'), {
      protocol: 'ipmi',
      host: 'bmc-7.mgmt',
      port: 6230,
    });
    assert.deepEqual(
      parseBmcAddress('redfish://bmc7/redfish/v1/Systems/System.Embedded.1', 'ipmi'),
      {
        protocol: 'redfish',
        host: 'bmc7',
        scheme: 'https',
        systemPath: '/redfish/v1/Systems/System.Embedded.1',
      },
    );
    assert.deepEqual(parseBmcAddress('http://127.0.0.1:8000', 'ipmi'), {
      protocol: 'redfish',
      host: '127.0.0.1',
      port: 8000,
      scheme: 'http',
    });
    assert.deepEqual(parseBmcAddress('[fd00::7]:623', 'ipmi'), {
      protocol: 'ipmi',
      host: 'fd00::7',
      port: 623,
    });
    assert.deepEqual(parseBmcAddress('bmc9', 'redfish'), {
      protocol: 'redfish',
      host: 'bmc9',
      scheme: 'https',
    });
  });

  it('refuses credentials in the address, other schemes, paths on IPMI, bad hosts and ports', () => {
    for (const [text, why] of [
      ['ipmi://admin:pw@10.0.0.1', /carries credentials; they belong in the credentials Secret/],
      ['ssh://10.0.0.1', /scheme ssh:\/\/ is not ipmi, redfish, https or http/],
      ['ipmi://10.0.0.1/x', /an IPMI address has no path/],
      ['redfish://h/redfish/v1/Managers/1', /the path must be \/redfish\/v1\/Systems\/<id>/],
      ['ipmi://bad_host!', /is not host\[:port\]/],
      ['ipmi://h:70000', /port 70000 is out of range/],
      ['', /is empty/],
    ] as const) {
      const r = parseBmcAddress(text, 'ipmi');
      assert.equal(typeof r, 'string', text);
      assert.match(r as string, why);
    }
  });
});

describe('choosing the BMC of a node', () => {
  it('off: no BMC for anyone, saying so', () => {
    const r = bmcSelector({ ...BASE, enabled: false, nodes: { n1: '10.0.0.1' } }).select(
      aNode({ name: 'n1' }),
    );
    assert.deepEqual(r, { reason: 'out-of-band power is off (bmc.enabled: false)' });
  });

  it('the config mapping first, with its credentials prefix', () => {
    const s = bmcSelector({
      ...BASE,
      nodes: { n1: { address: 'redfish://bmc-n1', credentials: 'rack7' } },
      addressAnnotation: 'aegis.io/bmc',
      allowedAddresses: ['.*'],
    });
    const r = s.select(aNode({ name: 'n1', annotations: { 'aegis.io/bmc': 'ipmi://evil' } }));
    assert.ok('target' in r);
    assert.equal(r.target.host, 'bmc-n1');
    assert.equal(r.target.credentials, 'rack7');
    assert.equal(r.target.source, 'bmc.nodes');
  });

  it('an annotation is used only when its host is allowed', () => {
    const s = bmcSelector({
      ...BASE,
      addressAnnotation: 'aegis.io/bmc',
      allowedAddresses: ['10\\.20\\.\\d+\\.\\d+'],
    });
    const ok = s.select(aNode({ annotations: { 'aegis.io/bmc': 'ipmi://10.20.3.4' } }));
    assert.ok('target' in ok);
    assert.equal(ok.target.source, 'annotation aegis.io/bmc');
    const evil = s.select(
      aNode({ annotations: { 'aegis.io/bmc': 'ipmi://attacker.example.com' } }),
    );
    assert.deepEqual(evil, {
      reason:
        'BMC host attacker.example.com from annotation aegis.io/bmc matches no bmc.allowedAddresses entry; not used',
    });
    // Anchored: a prefix match is not enough.
    assert.ok(
      'reason' in s.select(aNode({ annotations: { 'aegis.io/bmc': 'ipmi://10.20.3.4.evil.com' } })),
    );
  });

  it('a label likewise; then the template; else no BMC', () => {
    const s = bmcSelector({
      ...BASE,
      addressLabel: 'node-restriction.kubernetes.io/bmc',
      allowedAddresses: ['bmc-.*\\.mgmt'],
      addressTemplate: 'ipmi://{node}-ipmi.mgmt',
    });
    const byLabel = s.select(
      aNode({ labels: { 'node-restriction.kubernetes.io/bmc': 'bmc-9.mgmt' } }),
    );
    assert.ok('target' in byLabel && byLabel.target.host === 'bmc-9.mgmt');
    const byTemplate = s.select(aNode({ name: 'gpu-3' }));
    assert.ok('target' in byTemplate);
    assert.equal(byTemplate.target.host, 'gpu-3-ipmi.mgmt');
    assert.equal(byTemplate.target.source, 'bmc.addressTemplate');
    assert.deepEqual(bmcSelector(BASE).select(aNode({ name: 'x' })), {
      reason: 'no BMC is mapped for node x',
    });
  });
});

describe('the bmc config block', () => {
  it('is off by default, so every existing config loads unchanged', () => {
    const c = defaultConfig();
    assert.equal(c.bmc.enabled, false);
    assert.equal(c.bmc.credentialsSecret, 'aegis-bmc');
    assert.equal(c.bmc.notReadyAfterMs, 600_000);
    // Unset: BMC health follows bmc.enabled (off here).
    assert.equal(c.bmc.health.enabled, undefined);
  });

  it('names what is wrong: a bad mapped address, an annotation without allowed hosts', () => {
    const bad = ConfigSchema.safeParse({ bmc: { nodes: { 'gpu-1': 'ipmi://u:p@h' } } });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error.issues), /"nodes","gpu-1".*carries credentials/);
    const open = ConfigSchema.safeParse({ bmc: { addressAnnotation: 'aegis.io/bmc' } });
    assert.equal(open.success, false);
    assert.match(
      JSON.stringify(open.error.issues),
      /allowedAddresses.*is empty: an address read from a node annotation or label/,
    );
    const tpl = ConfigSchema.safeParse({ bmc: { addressTemplate: 'ipmi://bmc.mgmt' } });
    assert.equal(tpl.success, false);
  });
});
