import { describe, expect, it } from 'vitest';
import {
  GROUNDING_REWARD_KINDS,
  boxCentre,
  boxSizeConstraint,
  confidenceAlignment,
  cssToNormalised,
  erf,
  gaussianCoverageReward,
  gaussianPointReward,
  groundingReward,
  hitReward,
  hyperClickReward,
  hyperClickSpatialConfidence,
  iouReward,
  normalisedToCss,
  parseGroundingAnswer,
  type Box,
} from '../../../rewards/grounding.ts';

// Expected values were computed by hand from the formulas (double precision, Python's math).
const EXP_MINUS_HALF = 0.6065306597126334; // exp(−½): one σ off centre on one axis
const EXP_MINUS_ONE = 0.36787944117144233; // exp(−1): one σ off on both axes
const ERF_ONE_OVER_ROOT2 = 0.6826894921370859; // erf(1/√2): the mass within ±1σ
const ERF_ROOT2 = 0.9544997361036416; // erf(√2): the mass within ±2σ

const square: Box = { x1: 0, y1: 0, x2: 100, y2: 100 };

describe('hitReward', () => {
  const target: Box = { x1: 10, y1: 20, x2: 110, y2: 70 };

  it('is 1 inside the box and 0 outside', () => {
    expect(hitReward({ x: 60, y: 45 }, target)).toBe(1);
    expect(hitReward({ x: 9.99, y: 45 }, target)).toBe(0);
    expect(hitReward({ x: 60, y: 70.01 }, target)).toBe(0);
  });

  it('counts the edges and corners as inside', () => {
    expect(hitReward({ x: 10, y: 45 }, target)).toBe(1);
    expect(hitReward({ x: 110, y: 70 }, target)).toBe(1);
    expect(hitReward({ x: 10, y: 20 }, target)).toBe(1);
  });

  it('refuses zero-size, inverted and non-finite boxes, and non-finite points', () => {
    expect(() => hitReward({ x: 1, y: 1 }, { x1: 5, y1: 0, x2: 5, y2: 10 })).toThrow(
      'target box [5, 0, 5, 10] has zero width: it needs x1 < x2 and y1 < y2',
    );
    expect(() => hitReward({ x: 1, y: 1 }, { x1: 0, y1: 3, x2: 10, y2: 3 })).toThrow(/zero height/);
    expect(() => hitReward({ x: 1, y: 1 }, { x1: 10, y1: 0, x2: 0, y2: 10 })).toThrow(/inverted/);
    expect(() => hitReward({ x: 1, y: 1 }, { x1: 0, y1: 0, x2: Infinity, y2: 10 })).toThrow(/finite/);
    expect(() => hitReward({ x: Number.NaN, y: 1 }, target)).toThrow(/point \(NaN, 1\).*finite/);
  });
});

describe('gaussianPointReward (GUI-G², arXiv 2507.15846 Eq. 2)', () => {
  const target: Box = { x1: 0, y1: 0, x2: 100, y2: 50 }; // α = 0.5: σx = 50, σy = 25

  it('is exactly 1 at the centre', () => {
    expect(gaussianPointReward({ x: 50, y: 25 }, target)).toBe(1);
  });

  it('is exp(−½) one σ off centre on one axis and exp(−1) on both', () => {
    expect(gaussianPointReward({ x: 100, y: 25 }, target)).toBeCloseTo(EXP_MINUS_HALF, 15);
    expect(gaussianPointReward({ x: 0, y: 25 }, target)).toBeCloseTo(EXP_MINUS_HALF, 15);
    expect(gaussianPointReward({ x: 50, y: 50 }, target)).toBeCloseTo(EXP_MINUS_HALF, 15);
    expect(gaussianPointReward({ x: 100, y: 0 }, target)).toBeCloseTo(EXP_MINUS_ONE, 15);
  });

  it('scales σ with α', () => {
    // α = 0.25: σx = 25, so 25 px off is one σ.
    expect(gaussianPointReward({ x: 75, y: 25 }, target, { alpha: 0.25 })).toBeCloseTo(EXP_MINUS_HALF, 15);
    expect(() => gaussianPointReward({ x: 75, y: 25 }, target, { alpha: 0 })).toThrow(
      /alpha must be a positive/,
    );
  });

  it('stays positive far away, unlike a hit', () => {
    const far = gaussianPointReward({ x: 300, y: 25 }, target);
    expect(far).toBeGreaterThan(0);
    expect(far).toBeCloseTo(Math.exp(-12.5), 15); // 250 px = 5σ: exp(−25/2)
  });

  it('refuses a zero-size target', () => {
    expect(() => gaussianPointReward({ x: 0, y: 0 }, { x1: 0, y1: 0, x2: 0, y2: 10 })).toThrow(/zero width/);
  });
});

describe('erf', () => {
  it('matches reference values to 1e-12', () => {
    expect(erf(0)).toBe(0);
    expect(erf(0.1)).toBeCloseTo(0.1124629160182849, 12);
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 12);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 12);
    expect(erf(2)).toBeCloseTo(0.9953222650189527, 12);
    expect(erf(3)).toBeCloseTo(0.9999779095030014, 12);
    expect(erf(-1.5)).toBeCloseTo(-0.9661051464753108, 12);
    expect(erf(Math.SQRT1_2)).toBeCloseTo(ERF_ONE_OVER_ROOT2, 12);
    expect(erf(Math.SQRT2)).toBeCloseTo(ERF_ROOT2, 12);
  });

  it('is odd, saturates at ±1 and passes NaN through', () => {
    expect(erf(-0.7)).toBe(-erf(0.7));
    expect(erf(6)).toBe(1);
    expect(erf(-40)).toBe(-1);
    expect(erf(5.9)).toBeLessThanOrEqual(1);
    expect(erf(Number.NaN)).toBeNaN();
  });
});

describe('gaussianCoverageReward (GUI-G², arXiv 2507.15846 Eqs. 3–4)', () => {
  it('is 1 for the target box itself', () => {
    expect(gaussianCoverageReward(square, square)).toBeCloseTo(1, 15);
  });

  it('is exp(−⅛) for a same-size box shifted by one σ', () => {
    // σ = 50 for both boxes, Δ = 50: exp(−Δ²/(8·σ̄²)) with σ̄² = 50².
    expect(gaussianCoverageReward({ x1: 50, y1: 0, x2: 150, y2: 100 }, square)).toBeCloseTo(
      0.8824969025845955,
      15,
    );
  });

  it('is √(2σpσg/(σp²+σg²)) = √0.8 for a concentric box twice as wide', () => {
    expect(gaussianCoverageReward({ x1: -50, y1: 0, x2: 150, y2: 100 }, square)).toBeCloseTo(
      0.8944271909999159,
      15,
    );
  });

  it('multiplies the axes and is symmetric', () => {
    const predicted: Box = { x1: 50, y1: -50, x2: 150, y2: 150 }; // shifted in x, twice as tall
    expect(gaussianCoverageReward(predicted, square)).toBeCloseTo(0.7893292256448661, 15);
    expect(gaussianCoverageReward(square, predicted)).toBeCloseTo(0.7893292256448661, 15);
  });

  it('pays neither growing nor shrinking the box', () => {
    const grown = gaussianCoverageReward({ x1: -100, y1: -100, x2: 200, y2: 200 }, square);
    const shrunk = gaussianCoverageReward({ x1: 40, y1: 40, x2: 60, y2: 60 }, square);
    expect(grown).toBeLessThan(1);
    expect(shrunk).toBeLessThan(1);
  });

  it("with measure 'mass': the target Gaussian's mass inside the box, erf(1/√2)² for ±1σ", () => {
    // α = 0.5 makes the target box itself ±1σ on both axes.
    expect(gaussianCoverageReward(square, square, { measure: 'mass' })).toBeCloseTo(
      ERF_ONE_OVER_ROOT2 ** 2,
      12,
    );
    expect(ERF_ONE_OVER_ROOT2 ** 2).toBeCloseTo(0.4660649426743922, 15);
    // [50, 150] covers 0σ…+2σ in x: ½·erf(√2); y is ±1σ.
    expect(
      gaussianCoverageReward({ x1: 50, y1: 0, x2: 150, y2: 100 }, square, { measure: 'mass' }),
    ).toBeCloseTo(0.5 * ERF_ROOT2 * ERF_ONE_OVER_ROOT2, 12);
    // A box over the whole screen holds all the mass: this reading rewards growing boxes.
    expect(
      gaussianCoverageReward({ x1: -1000, y1: -1000, x2: 1100, y2: 1100 }, square, { measure: 'mass' }),
    ).toBe(1);
  });

  it('refuses empty boxes', () => {
    expect(() => gaussianCoverageReward({ x1: 0, y1: 0, x2: 10, y2: 0 }, square)).toThrow(
      /predicted box .* zero height/,
    );
  });
});

describe('hyperClickReward (HyperClick, arXiv 2510.27266 Eqs. 1–5)', () => {
  // α = 1/4: σ = 25 on both axes of the 100 × 100 square.
  it('the spatial confidence is the Gaussian inside the box and 0 outside', () => {
    expect(hyperClickSpatialConfidence({ x: 50, y: 50 }, square)).toBe(1);
    expect(hyperClickSpatialConfidence({ x: 75, y: 50 }, square)).toBeCloseTo(EXP_MINUS_HALF, 15);
    expect(hyperClickSpatialConfidence({ x: 100, y: 50 }, square)).toBeCloseTo(Math.exp(-2), 15);
    expect(hyperClickSpatialConfidence({ x: 100.5, y: 50 }, square)).toBe(0);
  });

  it('the alignment term is one minus the Brier score', () => {
    expect(confidenceAlignment(0.8, 1)).toBeCloseTo(0.96, 15);
    expect(confidenceAlignment(0.8, 0)).toBeCloseTo(0.36, 15);
    expect(confidenceAlignment(0, 0)).toBe(1);
    expect(confidenceAlignment(1, 0)).toBe(0);
    expect(() => confidenceAlignment(1.2, 0)).toThrow('confidence must be a number in [0, 1], got 1.2');
  });

  it('adds correctness and alignment', () => {
    expect(hyperClickReward({ x: 50, y: 50 }, square, 0.8)).toBeCloseTo(1.96, 15);
    // One σ off: C = exp(−½); 1 + 1 − (0.6 − exp(−½))².
    expect(hyperClickReward({ x: 75, y: 50 }, square, 0.6)).toBeCloseTo(1.9999573504837178, 15);
    // A miss stated with 0.8 confidence: 0 + 1 − 0.8².
    expect(hyperClickReward({ x: 150, y: 50 }, square, 0.8)).toBeCloseTo(0.36, 15);
    // A miss admitted with confidence 0 earns the full alignment term.
    expect(hyperClickReward({ x: 150, y: 50 }, square, 0)).toBe(1);
  });

  it('without a confidence scores correctness alone', () => {
    expect(hyperClickReward({ x: 50, y: 50 }, square, undefined)).toBe(1);
    expect(hyperClickReward({ x: 150, y: 50 }, square, undefined)).toBe(0);
  });

  it('weights the alignment term and takes α', () => {
    // Edge midpoint: C = exp(−2); 1 + 0.5·(1 − (0.5 − exp(−2))²).
    expect(hyperClickReward({ x: 100, y: 50 }, square, 0.5, { confidenceWeight: 0.5 })).toBeCloseTo(
      1.4335098221739393,
      15,
    );
    // α = ½: σ = 50, so the edge midpoint is one σ off.
    expect(hyperClickSpatialConfidence({ x: 100, y: 50 }, square, { alpha: 0.5 })).toBeCloseTo(
      EXP_MINUS_HALF,
      15,
    );
  });
});

describe('boxSizeConstraint (GUI-G1, arXiv 2505.15810 R_Box)', () => {
  const target: Box = { x1: 100, y1: 100, x2: 200, y2: 200 };

  it('is 1 for the target box', () => {
    expect(boxSizeConstraint(target, target, { viewport: { width: 1000, height: 500 } })).toBe(1);
  });

  it('is the harmonic mean of the four coordinate agreements', () => {
    // Agreements 1 − 10/1000, 1 − 10/1000, 1 − 10/500, 1 − 20/500.
    const predicted: Box = { x1: 110, y1: 90, x2: 190, y2: 220 };
    expect(boxSizeConstraint(predicted, target, { viewport: { width: 1000, height: 500 } })).toBeCloseTo(
      0.9798453526905474,
      15,
    );
  });

  it('costs growing and shrinking by the same margin alike', () => {
    const viewport = { width: 1000, height: 1000 };
    const grown = boxSizeConstraint({ x1: 90, y1: 90, x2: 210, y2: 210 }, target, { viewport });
    const shrunk = boxSizeConstraint({ x1: 110, y1: 110, x2: 190, y2: 190 }, target, { viewport });
    expect(grown).toBeCloseTo(0.99, 15);
    expect(shrunk).toBeCloseTo(0.99, 15);
  });

  it('is 0 when a coordinate is off by a whole screen', () => {
    const viewport = { width: 1000, height: 1000 };
    expect(
      boxSizeConstraint(
        { x1: 1000, y1: 0, x2: 1010, y2: 10 },
        { x1: 0, y1: 0, x2: 10, y2: 10 },
        { viewport },
      ),
    ).toBe(0);
  });

  it('needs a real viewport and real boxes', () => {
    expect(() => boxSizeConstraint(target, target, { viewport: { width: 0, height: 500 } })).toThrow(
      'viewport width must be a positive number, got 0',
    );
    expect(() =>
      boxSizeConstraint({ x1: 5, y1: 5, x2: 5, y2: 9 }, target, { viewport: { width: 10, height: 10 } }),
    ).toThrow(/predicted box .* zero width/);
  });
});

describe('iouReward', () => {
  it('is intersection over union', () => {
    expect(iouReward({ x1: 0, y1: 0, x2: 10, y2: 10 }, { x1: 5, y1: 0, x2: 15, y2: 10 })).toBeCloseTo(
      1 / 3,
      15,
    );
    expect(iouReward({ x1: 0, y1: 0, x2: 5, y2: 10 }, { x1: 0, y1: 0, x2: 10, y2: 10 })).toBe(0.5);
    expect(iouReward(square, square)).toBe(1);
  });

  it('is 0 for boxes that touch or are apart', () => {
    expect(iouReward({ x1: 0, y1: 0, x2: 10, y2: 10 }, { x1: 10, y1: 0, x2: 20, y2: 10 })).toBe(0);
    expect(iouReward({ x1: 0, y1: 0, x2: 10, y2: 10 }, { x1: 50, y1: 50, x2: 60, y2: 60 })).toBe(0);
  });
});

describe('normalised coordinates', () => {
  const viewport = { width: 1280, height: 720 };

  it('maps the 0–1000 grid to CSS pixels and back', () => {
    expect(normalisedToCss({ x: 500, y: 500 }, viewport)).toEqual({ x: 640, y: 360 });
    expect(normalisedToCss({ x1: 0, y1: 0, x2: 1000, y2: 1000 }, viewport)).toEqual({
      x1: 0,
      y1: 0,
      x2: 1280,
      y2: 720,
    });
    expect(cssToNormalised({ x: 640, y: 180 }, viewport)).toEqual({ x: 500, y: 250 });
  });

  it('round-trips points and boxes', () => {
    const point = { x: 123.4, y: 567.8 };
    const back = normalisedToCss(cssToNormalised(point, viewport), viewport);
    expect(back.x).toBeCloseTo(point.x, 10);
    expect(back.y).toBeCloseTo(point.y, 10);
    const box: Box = { x1: 12, y1: 34, x2: 560, y2: 700 };
    const boxBack = cssToNormalised(normalisedToCss(box, viewport), viewport);
    expect(boxBack.x1).toBeCloseTo(box.x1, 10);
    expect(boxBack.y2).toBeCloseTo(box.y2, 10);
  });

  it('takes another grid, and refuses empty viewports', () => {
    expect(normalisedToCss({ x: 0.25, y: 0.5 }, viewport, 1)).toEqual({ x: 320, y: 360 });
    expect(() => normalisedToCss({ x: 1, y: 1 }, { width: 1280, height: 0 })).toThrow(/viewport height/);
    expect(() => cssToNormalised({ x: 1, y: 1 }, viewport, -1)).toThrow(/grid must be a positive/);
  });
});

describe('parseGroundingAnswer', () => {
  it('reads JSON {"x", "y"}', () => {
    expect(parseGroundingAnswer('The button is here: {"x": 120, "y": 45.5}.')).toEqual({
      point: { x: 120, y: 45.5 },
    });
  });

  it('reads JSON {"point": [x, y]}', () => {
    expect(parseGroundingAnswer('{"point": [12.5, 30]}')).toEqual({ point: { x: 12.5, y: 30 } });
    expect(parseGroundingAnswer('{"action": "left_click", "coordinate": [7, 8]}')).toEqual({
      point: { x: 7, y: 8 },
    });
    expect(parseGroundingAnswer('{"x": "120", "y": " 45 "}')).toEqual({ point: { x: 120, y: 45 } });
  });

  it('reads JSON {"box": […]} and {"bbox": […]}', () => {
    expect(parseGroundingAnswer('{"box": [10, 20, 30, 40]}')).toEqual({
      box: { x1: 10, y1: 20, x2: 30, y2: 40 },
    });
    expect(parseGroundingAnswer('```json\n{"bbox": [1.5, 2, 3, 4.25]}\n```')).toEqual({
      box: { x1: 1.5, y1: 2, x2: 3, y2: 4.25 },
    });
  });

  it('reads Qwen2.5-VL JSON lists with bbox_2d', () => {
    expect(parseGroundingAnswer('[{"bbox_2d": [100, 200, 150, 260], "label": "Save"}]')).toEqual({
      box: { x1: 100, y1: 200, x2: 150, y2: 260 },
    });
  });

  it('reads a JSON confidence', () => {
    expect(parseGroundingAnswer('{"x": 5, "y": 6, "confidence": 0.8}')).toEqual({
      point: { x: 5, y: 6 },
      confidence: 0.8,
    });
  });

  it('reads (x, y)', () => {
    expect(parseGroundingAnswer('I will click at (640, 360) now.')).toEqual({ point: { x: 640, y: 360 } });
  });

  it('reads [x, y]', () => {
    expect(parseGroundingAnswer('Answer: [0.5, 12]')).toEqual({ point: { x: 0.5, y: 12 } });
  });

  it('reads [x1, y1, x2, y2]', () => {
    expect(parseGroundingAnswer('[850,1149,967,1177]')).toEqual({
      box: { x1: 850, y1: 1149, x2: 967, y2: 1177 },
    });
  });

  it('reads <point>x y</point>', () => {
    expect(parseGroundingAnswer('<point>312 88.5</point>')).toEqual({ point: { x: 312, y: 88.5 } });
    expect(parseGroundingAnswer('<point>[350,210]</point><confidence>0.969</confidence>')).toEqual({
      point: { x: 350, y: 210 },
      confidence: 0.969,
    });
  });

  it('reads Qwen2-VL <|box_start|>(x1,y1),(x2,y2)<|box_end|>', () => {
    expect(
      parseGroundingAnswer(
        '<|object_ref_start|>Save<|object_ref_end|><|box_start|>(10,20),(110,80)<|box_end|>',
      ),
    ).toEqual({ box: { x1: 10, y1: 20, x2: 110, y2: 80 } });
  });

  it('reads UI-TARS click(x=…, y=…)', () => {
    expect(parseGroundingAnswer('Action: click(x=412, y=96.5)')).toEqual({ point: { x: 412, y: 96.5 } });
  });

  it("reads UI-TARS click(start_box='(x,y)'), with or without box tokens", () => {
    expect(parseGroundingAnswer("Thought: the OK button.\nAction: click(start_box='(235,512)')")).toEqual({
      point: { x: 235, y: 512 },
    });
    expect(parseGroundingAnswer("click(start_box='<|box_start|>(235,512)<|box_end|>')")).toEqual({
      point: { x: 235, y: 512 },
    });
  });

  it('reads a text confidence', () => {
    expect(parseGroundingAnswer('(10, 20)\nConfidence: 0.35')).toEqual({
      point: { x: 10, y: 20 },
      confidence: 0.35,
    });
    expect(parseGroundingAnswer('confidence = 1 [1, 2]')).toEqual({ point: { x: 1, y: 2 }, confidence: 1 });
  });

  it('takes the form that starts first and ignores the rest', () => {
    expect(parseGroundingAnswer('First (1, 2), then [10, 20, 30, 40].')).toEqual({ point: { x: 1, y: 2 } });
    expect(parseGroundingAnswer('[10, 20, 30, 40] or maybe (1, 2)')).toEqual({
      box: { x1: 10, y1: 20, x2: 30, y2: 40 },
    });
    // JSON without a known key is not an answer; the list after it is.
    expect(parseGroundingAnswer('{"thought": "the icon"} [5, 6]')).toEqual({ point: { x: 5, y: 6 } });
  });

  it('says what to write when nothing parses', () => {
    const parsed = parseGroundingAnswer('I think it is the blue button.');
    expect(parsed).toEqual({
      error:
        'no point or box found: answer with a point such as {"x": 120, "y": 45} or a box such as [x1, y1, x2, y2]',
    });
  });

  it('refuses inverted and empty boxes', () => {
    expect(parseGroundingAnswer('[30, 10, 20, 40]')).toEqual({
      error: 'box [30, 10, 20, 40] is inverted: it needs x1 < x2 and y1 < y2',
    });
    expect(parseGroundingAnswer('<|box_start|>(5,5),(5,9)<|box_end|>')).toEqual({
      error: 'box [5, 5, 5, 9] has zero width: it needs x1 < x2 and y1 < y2',
    });
  });

  it('refuses numbers that are not finite', () => {
    expect(parseGroundingAnswer('[1e999, 5]')).toEqual({ error: '[…]: coordinates must be finite numbers' });
    expect(parseGroundingAnswer('{"x": 1e400, "y": 2}')).toEqual({
      error: 'JSON "x", "y": coordinates must be finite numbers',
    });
  });

  it('refuses a confidence outside [0, 1]', () => {
    expect(parseGroundingAnswer('(10, 20) confidence: 80')).toEqual({
      error: 'confidence 80 is outside [0, 1]: give a number such as 0.8',
    });
    expect(parseGroundingAnswer('{"point": [1, 2], "confidence": -0.1}')).toEqual({
      error: 'confidence -0.1 is outside [0, 1]: give a number such as 0.8',
    });
  });

  it('refuses malformed known forms', () => {
    expect(parseGroundingAnswer('{"point": [1, 2, 3]}')).toEqual({
      error: 'JSON "point" must be an array of 2 numbers [x, y]',
    });
    expect(parseGroundingAnswer('<|box_start|>(1,2,3)<|box_end|>')).toEqual({
      error: '<|box_start|> holds 3 numbers: give 2 (a point) or 4 (a box)',
    });
  });
});

describe('groundingReward', () => {
  const target: Box = { x1: 0, y1: 0, x2: 100, y2: 50 };

  it('lists its kinds', () => {
    expect(GROUNDING_REWARD_KINDS).toEqual([
      'hit',
      'gaussian_point',
      'gaussian_coverage',
      'hyperclick',
      'box_size',
      'iou',
    ]);
  });

  it('scores points with the point kinds', () => {
    expect(groundingReward('hit', { point: { x: 10, y: 10 } }, target)).toEqual({ value: 1 });
    expect(groundingReward('gaussian_point', { point: { x: 100, y: 25 } }, target).value).toBeCloseTo(
      EXP_MINUS_HALF,
      15,
    );
    expect(
      groundingReward('hyperclick', { point: { x: 50, y: 25 }, confidence: 0.8 }, target).value,
    ).toBeCloseTo(1.96, 15);
  });

  it('scores the centre of a box with the point kinds, and says so', () => {
    const answer = { box: { x1: 80, y1: 0, x2: 120, y2: 50 } };
    expect(boxCentre(answer.box)).toEqual({ x: 100, y: 25 });
    const result = groundingReward('gaussian_point', answer, target);
    expect(result.value).toBeCloseTo(EXP_MINUS_HALF, 15);
    expect(result.note).toBe('scored the centre (100, 25) of the answer box');
  });

  it('gives the box kinds 0 for a lone point, and says so', () => {
    for (const kind of ['gaussian_coverage', 'iou', 'box_size'] as const) {
      expect(
        groundingReward(kind, { point: { x: 50, y: 25 } }, target, { viewport: { width: 200, height: 100 } }),
      ).toEqual({ value: 0, note: `${kind} scores a box; the answer gave only a point` });
    }
  });

  it('scores boxes with the box kinds and passes options on', () => {
    expect(groundingReward('iou', { box: target }, target)).toEqual({ value: 1 });
    expect(
      groundingReward('gaussian_coverage', { box: target }, target, { measure: 'mass' }).value,
    ).toBeCloseTo(ERF_ONE_OVER_ROOT2 ** 2, 12);
    expect(
      groundingReward('box_size', { box: { x1: 10, y1: 0, x2: 100, y2: 50 } }, target, {
        viewport: { width: 1000, height: 500 },
      }).value,
    ).toBeCloseTo(4 / (1 / 0.99 + 3), 15);
  });

  it('notes a missing confidence for hyperclick', () => {
    expect(groundingReward('hyperclick', { point: { x: 50, y: 25 } }, target)).toEqual({
      value: 1,
      note: 'no confidence stated: the alignment term is 0',
    });
  });

  it('gives 0 with a reason for answers it cannot score', () => {
    expect(groundingReward('hit', {}, target)).toEqual({ value: 0, note: 'the answer has no point or box' });
    expect(groundingReward('iou', { box: { x1: 5, y1: 0, x2: 1, y2: 9 } }, target)).toEqual({
      value: 0,
      note: 'the answer box [5, 0, 1, 9] is inverted: it needs x1 < x2 and y1 < y2',
    });
    expect(groundingReward('hyperclick', { point: { x: 1, y: 1 }, confidence: 2 }, target)).toEqual({
      value: 0,
      note: 'the answer confidence 2 is outside [0, 1]',
    });
  });

  it("throws for the task's own mistakes", () => {
    expect(() => groundingReward('hit', { point: { x: 1, y: 1 } }, { x1: 0, y1: 0, x2: 0, y2: 1 })).toThrow(
      /target box .* zero width/,
    );
    expect(() => groundingReward('box_size', { box: target }, target)).toThrow(
      /box_size needs options.viewport/,
    );
    expect(() => groundingReward('nope' as never, { box: target }, target)).toThrow(
      /unknown grounding reward "nope"/,
    );
  });
});
